"""Fixtures for the conformance suite: a freshly started tensorlake-local per test module.

The binary is $TENSORLAKE_LOCAL_BIN, else target/debug/tensorlake-local, built with
`cargo build -p tensorlake-local` when it is missing or older than the server's sources.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import urllib.request
import warnings

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _binary() -> pathlib.Path:
    explicit = os.environ.get("TENSORLAKE_LOCAL_BIN")
    if explicit:
        path = pathlib.Path(explicit)
        if not path.is_file():
            raise RuntimeError(f"TENSORLAKE_LOCAL_BIN={explicit} does not exist")
        return path
    path = REPO / "target" / "debug" / "tensorlake-local"
    sources = [REPO / "server" / "Cargo.toml", *(p for p in (REPO / "server" / "src").rglob("*.rs"))]
    newest = max(p.stat().st_mtime for p in sources)
    if not path.is_file() or path.stat().st_mtime < newest:
        subprocess.run(["cargo", "build", "-p", "tensorlake-local"], cwd=REPO, check=True)
    return path


class LocalServer:
    """A running tensorlake-local with a throw-away data directory."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None):
        self.data = tempfile.mkdtemp(prefix="tl-conformance-")
        # /_admin needs the server's key when it has one (the last --api-key wins).
        keys = [extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "--api-key"]
        self.key = keys[-1] if keys else (env or {}).get("TENSORLAKE_LOCAL_API_KEY")
        args = [
            str(_binary()),
            "--port", "0",
            "--data-dir", self.data,
            "--snapshot-local-ready-ms", "200",
            "--snapshot-completed-ms", "300",
            *extra,
        ]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        first = self.proc.stdout.readline()
        prefix = "tensorlake-local listening on http://127.0.0.1:"
        if not first.startswith(prefix):
            self.proc.kill()
            raise RuntimeError(f"unexpected first line {first!r}: {self.proc.stderr.read()}")
        self.port = int(first[len(prefix):].strip())
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def admin(self, method: str, path: str, body: dict | None = None) -> dict | None:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.key:
            req.add_header("Authorization", f"Bearer {self.key}")
        with urllib.request.urlopen(req) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def requests(self) -> list[dict]:
        return self.admin("GET", "/_admin/requests")["requests"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    srv = LocalServer()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    from tensorlake.sandbox import SandboxClient

    # The documented workflow uses SandboxClient, which 0.5.163 marks deprecated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c = SandboxClient.for_localhost(api_url=server.url)
    yield c
    c.close()
