"""`hostpulse server --tsdb-url` as an operator runs it, against the real Debian
``victoria-metrics``: the server is ready, an agent's request is acknowledged once
VictoriaMetrics has it and reads back through the API; a wrong TSDB URL stops the server with
exit status 2 naming the setting."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import numpy as np
from cli_process import CliProcess, run_cli
from tsdbkit import victoria_metrics

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.testing import agent_key, login
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

ADMIN_PASSWORD = "tsdb-cli-" + os.urandom(8).hex()
ENV = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD}


def test_server_on_victoria_metrics(tmp_path: Path) -> None:
    with victoria_metrics(tmp_path / "vm") as vm:
        args = ["server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--tsdb-url", vm]
        with CliProcess([*args, "--log-level", "warning"], ENV) as server:
            url = server.url()
            assert httpx.get(f"{url}/api/v1/ready", timeout=30).json()["ready"] is True
            token = login(url, "admin", ADMIN_PASSWORD)["access_token"]
            admin = {"authorization": f"Bearer {token}"}
            host = SimHost(make_profile(0, seed=5), 5)
            now = int(time.time() * 1000)
            ts = np.arange(now - 60_000, now, 5000, dtype=np.int64)
            req = IngestRequest(batches=[host_batch(host, ts, 5.0)])
            key = agent_key(url, token, host.host_id)
            r = httpx.post(
                f"{url}/api/v1/ingest",
                content=codec.encode(req, encoding="gzip"),
                headers={
                    "content-type": "application/x-protobuf",
                    "content-encoding": "gzip",
                    "authorization": f"Bearer {key}",
                },
                timeout=30,
            )
            assert r.status_code == 200 and r.json()["accepted_samples"] > 0, r.text
            # VictoriaMetrics itself has the samples, under the exporter's name and host_id
            deadline = time.monotonic() + 30
            found: list[object] = []
            while not found and time.monotonic() < deadline:
                httpx.get(f"{vm}/internal/force_flush", timeout=30).raise_for_status()
                found = httpx.get(
                    f"{vm}/api/v1/query",
                    params={"query": f'node_cpu_busy_percent{{host_id="{host.host_id}"}}'},
                    timeout=10,
                ).json()["data"]["result"]
                time.sleep(0.2)
            assert found
            [h] = httpx.get(f"{url}/api/v1/hosts", headers=admin, timeout=10).json()
            assert (h["host_id"], h["last_seen_ms"]) == (host.host_id, int(ts[-1]))
            current = httpx.get(
                f"{url}/api/v1/hosts/{host.host_id}/current",
                params={"metric": "cpu_busy_percent"},
                headers=admin,
                timeout=10,
            ).json()["values"]
            assert [v["metric"] for v in current] == ["cpu_busy_percent"]


def test_a_wrong_tsdb_url_names_the_setting_and_exits_2(tmp_path: Path) -> None:
    r = run_cli(
        [
            "server",
            "--data-dir",
            str(tmp_path),
            "--tsdb-url",
            "http://vminsert:8480/insert/0/prometheus",
        ]
    )
    assert r.returncode == 2
    assert "tsdb_query_url" in r.stderr and "vmselect" in r.stderr, r.stderr
    env = {**os.environ, "HOSTPULSE_TSDB_URL": "vm:8428"}
    r = run_cli(["server", "--data-dir", str(tmp_path)], env)
    assert r.returncode == 2 and "HOSTPULSE_TSDB_URL" in r.stderr, r.stderr
