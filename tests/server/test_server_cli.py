"""`hostpulse server` as a user runs it: a subprocess that prints its URL and serves."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
from cli_process import CliProcess, run_cli

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.testing import agent_key, login
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

ADMIN_PASSWORD = "cli-test-" + os.urandom(8).hex()
ENV = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD}


def _admin(url: str) -> dict[str, str]:
    return {"authorization": f"Bearer {login(url, 'admin', ADMIN_PASSWORD)['access_token']}"}


def test_server_command_prints_its_url_and_serves(tmp_path: Path) -> None:
    args = ["server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--log-level", "warning"]
    with CliProcess(args, ENV) as server:
        url = server.url()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/api/v1/ready", timeout=10).json()["ready"] is True
        assert httpx.get(f"{url}/api/v1/hosts", headers=_admin(url), timeout=10).json() == []
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert any((tmp_path / "d").iterdir())


def test_bad_settings_name_the_key_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "HOSTPULSE_RETENTION_RAW": "forever"}
    r = run_cli(["server", "--data-dir", str(tmp_path)], env)
    assert r.returncode == 2
    assert "HOSTPULSE_RETENTION_RAW" in r.stderr and "forever" in r.stderr
    r2 = run_cli(["server", "--retention-hour", "-5d"])
    assert r2.returncode == 2 and "retention_hour" in r2.stderr


def test_up_serves_from_the_per_user_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with CliProcess(["up", "--port", "0", "--log-level", "warning"], env) as up:
        url = up.wait_for(r"hostpulse is up: (http://\S+)").group(1)
        assert httpx.get(f"{url}/api/v1/ready", timeout=10).status_code == 200
    assert (tmp_path / "xdg" / "hostpulse").is_dir()
    assert any((tmp_path / "xdg" / "hostpulse").iterdir())


def _server(data: Path) -> CliProcess:
    return CliProcess(
        ["server", "--port", "0", "--data-dir", str(data), "--log-level", "warning"], ENV
    )


def test_an_acknowledged_batch_survives_a_server_crash(tmp_path: Path) -> None:
    host = SimHost(make_profile(0))
    t = int(time.time() * 1000) - 10_000
    req = host_batch(host, np.array([t - 5000, t], dtype=np.int64), 5.0)
    body = codec.encode(IngestRequest(batches=[req]))
    with _server(tmp_path / "d") as server:
        url = server.url()
        key = agent_key(url, _admin(url)["authorization"].split()[1], host.host_id)
        r = httpx.post(
            f"{url}/api/v1/ingest",
            content=body,
            headers={
                "content-type": "application/x-protobuf",
                "content-encoding": "gzip",
                "authorization": f"Bearer {key}",
            },
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["accepted_samples"] == 2 * len(host.series)
        server.stop(signal.SIGKILL)  # no shutdown, no flush
    with _server(tmp_path / "d") as server:
        url = server.url()
        cur = httpx.get(
            f"{url}/api/v1/hosts/{host.host_id}/current", headers=_admin(url), timeout=10
        ).json()
        assert len(cur["values"]) == len(host.series)
        assert {v["ts_ms"] for v in cur["values"]} == {t}
