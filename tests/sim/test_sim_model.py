"""The simulator's hosts look like real ones: varied, diurnal, spiky, filling, valid on the wire."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from hostpulse import catalog
from hostpulse.server.testing import Clock, LiveServer
from hostpulse.sim.model import SimHost, make_profile
from hostpulse.sim.push import backfill, enroll_hosts, make_hosts, run_live

DAY_MS = 86_400_000


def _column(host: SimHost, key: str, labels: tuple[tuple[str, str], ...] = ()) -> int:
    return host.series.index((key, labels))


def test_hosts_vary_and_use_catalog_keys_and_labels() -> None:
    hosts = make_hosts(30)
    assert len({h.profile.cores for h in hosts}) >= 3
    assert len({len(h.profile.filesystems) for h in hosts}) >= 2
    assert len({len(h.profile.interfaces) for h in hosts}) >= 2
    for h in hosts:
        assert 100 <= len(h.series) <= 260
        for key, labels in h.series:
            assert tuple(n for n, _ in labels) == catalog.get(key).labels


def test_load_is_diurnal_with_spikes() -> None:
    host = SimHost(make_profile(1))
    ts = np.arange(0, 7 * DAY_MS, 60_000, dtype=np.int64)
    busy = host.block(ts)[:, _column(host, "cpu_busy_percent")]
    hour = (ts // 3_600_000) % 24
    by_hour = np.array([busy[hour == h].mean() for h in range(24)])
    peak = round(host.profile.peak_hour) % 24
    trough = (peak + 12) % 24
    assert by_hour[peak] > by_hour[trough] + 10
    # spikes: minutes far above the usual level for that hour
    usual = by_hour[hour]
    assert np.sum(busy > usual + 25) > 10
    assert np.all((busy >= 0) & (busy <= 100))


def test_a_filling_disk_fills_and_counters_only_grow() -> None:
    host = next(h for h in make_hosts(40) if h.profile.fill_per_day >= 0.01)
    dev, mp, _ = host.profile.filesystems[0]
    ts = np.arange(0, 3 * DAY_MS, 300_000, dtype=np.int64) + 1_795_000_000_000
    values = host.block(ts)
    used = values[:, _column(host, "filesystem_used_bytes", (("device", dev), ("mountpoint", mp)))]
    assert used[-1] > used[0]
    for i, (key, _labels) in enumerate(host.series):
        if catalog.get(key).kind is catalog.Kind.COUNTER:
            assert np.all(np.diff(values[:, i]) >= 0), key
    # counters carry over between calls
    more = host.block(ts[-1:] + 300_000)
    col = _column(host, "cpu_context_switches")
    assert more[0, col] >= values[-1, col]


def test_simulated_hosts_are_accepted_by_a_real_server(tmp_path: Path) -> None:
    import asyncio
    import time

    hosts = make_hosts(3)

    async def push(url: str, token: str) -> tuple[int, int, int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            keys = await enroll_hosts(client, hosts, token)
            assert len(set(keys.values())) == 3  # a key of its own for each host
            now = int(time.time() * 1000)
            bf = await backfill(
                client, hosts, now - 600_000, now - 10_000, 5.0, keys=keys, chunk=40
            )
            # one tick at a 30 s interval: online for 60 s, so a slow (loaded) machine still reads
            # the hosts as online a few seconds later
            live = await run_live(client, hosts, 30.0, 0.5, keys=keys)
            return bf.samples, live.samples, bf.failures + live.failures

    with LiveServer(tmp_path / "d", Clock()) as srv:
        token = srv.enrollment_token(single_use=False)
        backfilled, live, failures = asyncio.run(push(srv.url, token))
        assert failures == 0
        assert backfilled == sum(len(h.series) for h in hosts) * 118
        assert live >= sum(len(h.series) for h in hosts)
        stats = srv.call(srv.store.stats())
        assert stats.hosts == 3
        assert stats.raw_samples == backfilled + live
        listed = httpx.get(f"{srv.url}/api/v1/hosts", headers=srv.headers("viewer")).json()
        assert {h["status"] for h in listed} == {"online"}
        assert {h["hostname"].split("-")[0] for h in listed} <= {
            "web",
            "db",
            "cache",
            "batch",
            "api",
        }


def test_simulate_command_backfills_then_pushes_live(tmp_path: Path) -> None:
    import subprocess
    import sys

    with LiveServer(tmp_path / "d", Clock()) as srv:
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                "from hostpulse.cli.main import main; main()",
                "simulate",
                "--hosts",
                "2",
                "--interval",
                "1",
                "--duration",
                "1.5",
                "--backfill",
                "0.05",
                "--server",
                srv.url,
                "--enroll-token",
                srv.enrollment_token(single_use=False),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert "back-filled" in r.stdout and "pushed" in r.stdout
        hosts = httpx.get(f"{srv.url}/api/v1/hosts", headers=srv.headers("viewer")).json()
        assert sorted(h["host_id"] for h in hosts) == ["sim-00000", "sim-00001"]
        hist = httpx.get(
            f"{srv.url}/api/v1/hosts/sim-00000/metrics/cpu_busy_percent/history",
            params={"start": "now-4m"},
            headers=srv.headers("viewer"),
        ).json()
        assert len(hist["series"][0]["points"]) >= 170  # 3 minutes at 1 s, plus live


def test_simulate_refuses_to_run_without_an_enrollment_token() -> None:
    from typer.testing import CliRunner

    from hostpulse.cli.main import app

    result = CliRunner().invoke(
        app, ["simulate", "--hosts", "1", "--server", "http://127.0.0.1:9", "--duration", "0"]
    )
    assert result.exit_code == 2
    assert "--enroll-token" in result.output and "hostpulse token create" in result.output
