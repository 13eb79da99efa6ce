"""Conformance of tensorlake-local with the official Python SDK (tensorlake==0.5.163).

The documented snapshot workflow (docs.tensorlake.ai /sandboxes/snapshots), end to end against a
freshly started server, then the error paths a user meets: unknown ids, a failed snapshot, a
memory snapshot restored with other resources. Commands the docs write as
`sandbox.commands.run("...")` are sent the way the SDK really can: `sandbox.run("sh", args=["-c", ...])`.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from tensorlake.sandbox import SandboxStatus, SnapshotStatus, SnapshotType
from tensorlake.sandbox.exceptions import RemoteAPIError, SandboxError, SandboxNotFoundError

from conftest import LocalServer

CSV = "name,value\nalpha,1\nbeta,2"


def _recent(ts: dt.datetime | None) -> bool:
    return ts is not None and abs((dt.datetime.now(dt.timezone.utc) - ts).total_seconds()) < 120


def test_documented_workflow(client, server):
    sandbox = client.create_and_connect()
    assert client.get(sandbox.sandbox_id).status == SandboxStatus.RUNNING

    result = sandbox.run("sh", args=["-c", f"mkdir -p /data && printf '{CSV}\\n' > /data/output.csv"])
    assert result.exit_code == 0, result.stderr

    snapshot = client.snapshot_and_wait(sandbox.sandbox_id)
    assert snapshot.status in (SnapshotStatus.LOCAL_READY, SnapshotStatus.COMPLETED)
    snapshot_id = snapshot.snapshot_id
    assert snapshot_id

    info = client.get_snapshot(snapshot_id)
    assert info.snapshot_id == snapshot_id
    assert info.sandbox_id == sandbox.sandbox_id
    assert info.namespace == "default"
    assert info.status in (SnapshotStatus.LOCAL_READY, SnapshotStatus.COMPLETED)
    assert info.snapshot_type == SnapshotType.FILESYSTEM
    assert isinstance(info.size_bytes, int) and info.size_bytes > 0
    assert _recent(info.created_at), info.created_at
    assert info.error is None

    listed = [s for s in client.list_snapshots() if s.snapshot_id == snapshot_id]
    assert len(listed) == 1
    assert listed[0].status.value in ("local_ready", "completed")
    assert listed[0].size_bytes == info.size_bytes
    assert _recent(listed[0].created_at)

    restored = client.create_and_connect(snapshot_id=snapshot_id, cpus=4.0, memory_mb=2048)
    assert restored.sandbox_id != sandbox.sandbox_id
    restored_info = client.get(restored.sandbox_id)
    assert restored_info.resources.cpus == 4.0
    assert restored_info.resources.memory_mb == 2048
    out = restored.run("sh", args=["-c", "cat /data/output.csv"])
    assert out.exit_code == 0
    assert out.stdout == CSV
    assert restored.read_file("/data/output.csv").value == (CSV + "\n").encode()

    client.delete_snapshot(snapshot_id)
    with pytest.raises(RemoteAPIError) as err:
        client.get_snapshot(snapshot_id)
    assert err.value.status_code == 404
    assert all(s.snapshot_id != snapshot_id for s in client.list_snapshots())

    sandbox.terminate()
    restored.terminate()
    assert client.get(sandbox.sandbox_id).status == SandboxStatus.TERMINATED
    assert client.get(restored.sandbox_id).status == SandboxStatus.TERMINATED
    assert all(s.sandbox_id not in (sandbox.sandbox_id, restored.sandbox_id) for s in client.list())

    # The SDK's own wire: namespaced lifecycle paths, daemon calls by Host, one POST per snapshot.
    log = server.requests()
    snapshot_posts = [r for r in log if r["method"] == "POST" and r["path"].endswith(f"/{sandbox.sandbox_id}/snapshot")]
    assert len(snapshot_posts) == 1
    assert all(r["traceparent"] for r in log)
    assert any(r["path"] == "/api/v1/processes/run" for r in log)


def test_snapshot_and_wait_until_completed(client, server):
    sandbox = client.create_and_connect()
    try:
        snap = client.snapshot_and_wait(sandbox.sandbox_id, wait_until="completed", poll_interval=0.1)
        assert snap.status == SnapshotStatus.COMPLETED
        # An opaque name: the server's data directory is nobody else's business.
        assert snap.snapshot_uri and snap.snapshot_uri.startswith("tensorlake-local://snapshots/")
        per_sandbox = [s.snapshot_id for s in client.list_sandbox_snapshots(sandbox.sandbox_id)]
        assert per_sandbox == [snap.snapshot_id]
        # WHL 0.5.163 reads the sandbox's own listing (wire-protocol.md 2.3 inferred this path).
        assert any(
            r["method"] == "GET" and r["path"] == f"/v1/namespaces/default/sandboxes/{sandbox.sandbox_id}/snapshots"
            for r in server.requests()
        )
    finally:
        sandbox.terminate()


def test_unknown_snapshot_id(client):
    with pytest.raises(RemoteAPIError) as err:
        client.get_snapshot("snap-doesnotexist")
    assert err.value.status_code == 404
    assert "Snapshot not found: snap-doesnotexist" in str(err.value)

    with pytest.raises(RemoteAPIError) as err:
        client.delete_snapshot("snap-doesnotexist")
    assert err.value.status_code == 404

    with pytest.raises(SandboxError) as err:
        client.create_and_connect(snapshot_id="snap-doesnotexist")
    assert "Snapshot not found" in str(err.value)


def test_unknown_sandbox_id(client):
    with pytest.raises(SandboxNotFoundError) as err:
        client.get("sbx-doesnotexist")
    assert err.value.sandbox_id == "sbx-doesnotexist"
    with pytest.raises(SandboxNotFoundError):
        client.snapshot("sbx-doesnotexist")
    with pytest.raises(SandboxNotFoundError):
        client.snapshot_and_wait("sbx-doesnotexist")
    with pytest.raises(SandboxNotFoundError):
        client.delete("sbx-doesnotexist")
    with pytest.raises(SandboxNotFoundError):
        client.connect("sbx-doesnotexist")


def test_failed_snapshot_raises_with_the_servers_message(client, server):
    sandbox = client.create_and_connect()
    try:
        message = "snapshot storage unavailable (injected)"
        server.admin("POST", "/_admin/snapshot-failures", {"sandbox_id": sandbox.sandbox_id, "error": message})
        with pytest.raises(SandboxError) as err:
            client.snapshot_and_wait(sandbox.sandbox_id, poll_interval=0.1)
        assert message in str(err.value)
        assert "failed" in str(err.value)
        failed = [s for s in client.list_snapshots() if s.sandbox_id == sandbox.sandbox_id]
        assert len(failed) == 1
        assert failed[0].status == SnapshotStatus.FAILED
        assert failed[0].error == message
        # Restoring from it is refused with the reason.
        with pytest.raises(RemoteAPIError) as err:
            client.create_and_connect(snapshot_id=failed[0].snapshot_id)
        assert err.value.status_code == 400
        assert message in str(err.value)
    finally:
        sandbox.terminate()


def test_memory_snapshot_keeps_its_resources(client):
    sandbox = client.create_and_connect(cpus=2.0, memory_mb=1536)
    try:
        sandbox.run("sh", args=["-c", "echo warm > /state.txt"])
        snap = client.snapshot_and_wait(sandbox.sandbox_id, snapshot_type=SnapshotType.MEMORY, poll_interval=0.1)
        assert client.get_snapshot(snap.snapshot_id).snapshot_type == SnapshotType.MEMORY
        with pytest.raises(RemoteAPIError) as err:
            client.create_and_connect(snapshot_id=snap.snapshot_id, cpus=4.0, memory_mb=2048)
        assert err.value.status_code == 400
        assert "memory snapshot" in str(err.value)
        # The SDK omits resources on a restore without them: they are inherited.
        restored = client.create_and_connect(snapshot_id=snap.snapshot_id)
        resources = client.get(restored.sandbox_id).resources
        assert (resources.cpus, resources.memory_mb) == (2.0, 1536)
        assert restored.read_file("/state.txt").value == b"warm\n"
        restored.terminate()
    finally:
        sandbox.terminate()


def test_commands_and_files(client):
    sandbox = client.create_and_connect()
    try:
        r = sandbox.run("sh", args=["-c", 'echo "$GREETING from $(pwd)"; echo warn >&2; exit 3'], env={"GREETING": "hi"}, working_dir="/tmp")
        assert (r.exit_code, r.stdout, r.stderr) == (3, "hi from /tmp", "warn")
        timed = sandbox.run("sleep", args=["30"], timeout=0.5)
        assert timed.exit_code == -9
        assert timed.timed_out
        sandbox.write_file("/data/in/upload.bin", b"\x00\x01binary")
        assert sandbox.read_file("/data/in/upload.bin").value == b"\x00\x01binary"
        names = [e.name for e in sandbox.list_directory("/data/in").entries]
        assert names == ["upload.bin"]
        sandbox.delete_file("/data/in/upload.bin")
        assert sandbox.list_directory("/data/in").entries == []
        procs = list(sandbox.list_processes())
        assert [p.command for p in procs] == ["sh", "sleep"]
        with pytest.raises(RemoteAPIError) as err:
            sandbox.read_file("/does/not/exist")
        assert err.value.status_code == 404
    finally:
        sandbox.terminate()


def test_sdk_retries_a_503_and_the_server_answers_once(client, server):
    sandbox = client.create_and_connect()
    try:
        snap = client.snapshot(sandbox.sandbox_id)
        server.admin("POST", "/_admin/faults", {"method": "GET", "path": f"/v1/namespaces/*/snapshots/{snap.snapshot_id}", "status": 503})
        info = client.get_snapshot(snap.snapshot_id)
        assert info.snapshot_id == snap.snapshot_id
        gets = [r for r in server.requests() if r["path"].endswith(f"/snapshots/{snap.snapshot_id}")]
        assert [r["status"] for r in gets] == [503, 200]
    finally:
        sandbox.terminate()


def test_api_key():
    from tensorlake.sandbox import SandboxClient

    srv = LocalServer("--api-key", "tl_apiKey_conformance")
    try:
        with pytest.warns(DeprecationWarning):
            good = SandboxClient(api_url=srv.url, api_key="tl_apiKey_conformance")
        sandbox = good.create_and_connect()
        assert sandbox.run("true").exit_code == 0
        sandbox.terminate()
        with pytest.warns(DeprecationWarning):
            bad = SandboxClient(api_url=srv.url, api_key="wrong")
        with pytest.raises(RemoteAPIError) as err:
            bad.list_snapshots()
        assert err.value.status_code == 401
        time.sleep(0.1)
        assert not any("tl_apiKey_conformance" in line or "wrong" in line for line in srv.stderr_lines)
    finally:
        srv.stop()


def test_pending_sandbox_is_waited_for():
    from tensorlake.sandbox import SandboxClient

    srv = LocalServer("--sandbox-startup-ms", "500")
    try:
        with pytest.warns(DeprecationWarning):
            c = SandboxClient.for_localhost(api_url=srv.url)
        sandbox = c.create_and_connect()
        assert c.get(sandbox.sandbox_id).status == SandboxStatus.RUNNING
        assert sandbox.run("echo", args=["up"]).stdout == "up"
        sandbox.terminate()
    finally:
        srv.stop()
