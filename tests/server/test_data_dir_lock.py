"""Issue 12 item 5: a second embedded server on the same data directory (``hostpulse server``
or ``hostpulse up``) exits 2 naming the directory and the running server's pid, instead of
starting beside it; the first server is unharmed. Real processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from cli_process import CliProcess, run_cli
from wire import batch, now_ms, post_ingest, request

from hostpulse.protocol import codec
from hostpulse.server.testing import agent_key, login

ADMIN_PASSWORD = "lock-test-" + os.urandom(8).hex()
ENV = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD}


def _server(data: Path) -> CliProcess:
    return CliProcess(
        ["server", "--port", "0", "--data-dir", str(data), "--log-level", "warning"], ENV
    )


def _push(url: str, key: str) -> int:
    body = codec.encode(request(batch("lock-1", [(now_ms(), {("cpu_busy_percent", ()): 7.0})])))
    return post_ingest(url, key, body).status_code


@pytest.mark.slow
def test_a_second_server_on_the_same_data_dir_exits_2_naming_it_and_the_pid(
    tmp_path: Path,
) -> None:
    data = tmp_path / "d"
    with _server(data) as first:
        url = first.url()
        admin = {"authorization": f"Bearer {login(url, 'admin', ADMIN_PASSWORD)['access_token']}"}
        key = agent_key(url, admin["authorization"].split()[1], "lock-1")
        assert _push(url, key) == 200
        for command in ("server", "up"):
            r = run_cli([command, "--port", "0", "--data-dir", str(data)], ENV)
            assert r.returncode == 2, (command, r.stdout, r.stderr)
            assert str(data) in r.stderr and f"pid {first.proc.pid}" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr + r.stdout
            assert "listening" not in r.stdout + r.stderr
        # the first one still serves, reads and writes as before
        assert httpx.get(f"{url}/api/v1/ready", timeout=10).status_code == 200
        assert _push(url, key) == 200
        hosts = httpx.get(f"{url}/api/v1/hosts", headers=admin, timeout=10).json()
        assert [h["host_id"] for h in hosts] == ["lock-1"]
        first.stop(signal.SIGKILL)  # the kernel releases the lock with the process
    with _server(data) as again:  # so a server killed hard leaves nothing that blocks a start
        url = again.url()
        assert httpx.get(f"{url}/api/v1/ready", timeout=10).status_code == 200
