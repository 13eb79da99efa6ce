"""Sandbox pools through the official Python SDK's own pool methods (create_pool, get_pool,
list_pools, update_pool, delete_pool, claim) against tensorlake-local, and the 501 a route
without local meaning answers (RemoteAPIError, never SandboxNotFoundError).
"""

from __future__ import annotations

import time

import pytest
from tensorlake.sandbox import SandboxStatus
from tensorlake.sandbox.exceptions import (
    PoolInUseError,
    PoolNotFoundError,
    RemoteAPIError,
    SandboxNotFoundError,
)


def _wait_idle(client, pool_id: str, n: int, timeout: float = 60.0) -> list[str]:
    deadline = time.time() + timeout
    while True:
        containers = client.get_pool(pool_id).containers or []
        idle = [c.id for c in containers if c.state == "Idle"]
        if len(idle) == n:
            return idle
        assert time.time() < deadline, f"pool {pool_id} never had {n} warm sandboxes: {containers}"
        time.sleep(0.2)


def test_pool_lifecycle_through_the_sdk(client):
    created = client.create_pool(
        image="tensorlake/ubuntu-minimal",
        cpus=1.0,
        memory_mb=512,
        warm_containers=1,
        max_containers=2,
    )
    pool_id = created.pool_id
    assert created.namespace == "default"

    info = client.get_pool(pool_id)
    assert info.pool_id == pool_id
    assert info.image == "tensorlake/ubuntu-minimal"
    assert (info.resources.cpus, info.resources.memory_mb) == (1.0, 512)
    assert (info.warm_containers, info.max_containers) == (1, 2)
    assert pool_id in [p.pool_id for p in client.list_pools()]

    warm = _wait_idle(client, pool_id, 1)
    claimed = client.claim(pool_id)
    assert claimed.sandbox_id == warm[0]
    assert claimed.status == SandboxStatus.RUNNING
    sandbox = client.connect(claimed.sandbox_id)
    assert sandbox.run("sh", args=["-c", "echo pooled"]).stdout == "pooled"

    # The claimed one is replaced; claiming it too fills the pool, and the next claim is refused.
    _wait_idle(client, pool_id, 1)
    second = client.claim(pool_id)
    with pytest.raises(RemoteAPIError) as err:
        client.claim(pool_id)
    assert err.value.status_code == 429
    assert "max_containers" in str(err.value)

    with pytest.raises(PoolInUseError):
        client.delete_pool(pool_id)

    updated = client.update_pool(
        pool_id, image="tensorlake/ubuntu-minimal", memory_mb=512, warm_containers=0, max_containers=3
    )
    assert (updated.warm_containers, updated.max_containers) == (0, 3)

    client.delete(claimed.sandbox_id)
    client.delete(second.sandbox_id)
    client.delete_pool(pool_id)
    with pytest.raises(PoolNotFoundError):
        client.get_pool(pool_id)
    with pytest.raises(PoolNotFoundError):
        client.delete_pool(pool_id)
    with pytest.raises(PoolNotFoundError):
        client.update_pool(pool_id, image="tensorlake/ubuntu-minimal")


def test_unsupported_routes_are_501_not_sandbox_not_found(client):
    sandbox = client.create_and_connect()
    try:
        with pytest.raises(RemoteAPIError) as err:
            client.copy(sandbox.sandbox_id)
        assert not isinstance(err.value, SandboxNotFoundError)
        assert err.value.status_code == 501
        assert "copies" in str(err.value)
    finally:
        sandbox.terminate()
