"""The host page's history in headless Chromium against a real server fed with exact samples:
a fresh host (one sample) at every range keeps the asked range on the axis (no years), an outage
is drawn as a gap, the host goes by its hostname everywhere (id on hover), and at 375 px no
table cell is clipped. Saves screenshots in docs/screenshots/."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from e2ekit import ROOT, Server, require_browser

from hostpulse.protocol import Host, HostBatch, IngestRequest, Label, SeriesDef, codec
from hostpulse.server.testing import agent_key, login

FRESH = "0f3c9a1be27d4c5e8a6b1f2d3c4e5a6b"  # a machine id, as a real agent sends
GAPPY = "9a8b7c6d5e4f30211f2e3d4c5b6a7988"
TIMEOUT_S = 240.0


def host_batch(host_id: str, hostname: str, stamps: list[int]) -> HostBatch:
    hb = HostBatch(
        host=Host(
            host_id=host_id,
            hostname=hostname,
            os="Linux",
            kernel="6.1.0",
            arch="x86_64",
            cpu_model="Test CPU",
            logical_cores=2,
            memory_bytes=4 << 30,
            interval_seconds=5.0,
            labels=[Label(name="env", value="e2e")],
        ),
        series=[
            SeriesDef(metric="cpu_busy_percent"),
            SeriesDef(metric="memory_usage_percent"),
            SeriesDef(
                metric="network_receive_bytes_per_second",
                labels=[Label(name="interface", value="eth0")],
            ),
        ],
    )
    for i, ts in enumerate(stamps):
        snap = hb.snapshots.add(timestamp_ms=ts)
        snap.series_index.extend([0, 1, 2])
        snap.values.extend([20.0 + i % 7, 40.0, 1_048_576.0])
    return hb


def push(server: Server, admin: str, hb: HostBatch) -> None:
    key = agent_key(server.url, admin, hb.host.host_id)
    r = httpx.post(
        server.url + "/api/v1/ingest",
        content=codec.encode(IngestRequest(batches=[hb])),
        headers={
            "authorization": f"Bearer {key}",
            "content-type": "application/x-protobuf",
            "content-encoding": "gzip",
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text


def test_history_of_a_fresh_host_and_an_outage(server: Server) -> None:
    require_browser()
    admin = login(server.url, "admin", server.admin_password)["access_token"]
    now = int(time.time() * 1000)
    push(server, admin, host_batch(FRESH, "fresh.example", [now - 2000]))
    # every 5 s for 10 minutes, then nothing for 6 minutes, then 4 more minutes
    before = [now - 20 * 60_000 + i * 5000 for i in range(120)]
    after = [now - 4 * 60_000 + i * 5000 for i in range(47)]
    push(server, admin, host_batch(GAPPY, "gappy.example", before + after))
    shots = ROOT / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    env = {
        "HP_URL": server.url,
        "HP_USER": "admin",
        "HP_PASSWORD": server.admin_password,
        "HP_FRESH": FRESH,
        "HP_GAPPY": GAPPY,
        "HP_SHOTS": str(shots),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    script = Path(__file__).with_name("history.e2e.mjs")
    proc = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "E2E OK" in log, log
    for name in (
        "a fresh host at every range",
        "an outage is a gap",
        "one name per host",
        "375 px: no clipped cell",
    ):
        assert f"STEP {name}" in log, name
