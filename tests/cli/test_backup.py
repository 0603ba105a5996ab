"""`hostpulse backup` of a running server's store and `hostpulse restore` into a new directory,
with real processes: what was stored before the backup reads back through the query API of a
server started on the restored directory."""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import CliProcess, run_cli

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, Host, HostBatch, IngestRequest, SeriesDef
from hostpulse.server.testing import agent_key, login

PASSWORD = "backup-test-password"
HOUR_MS = 3_600_000


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    return {**base, "HOSTPULSE_ADMIN_PASSWORD": PASSWORD, **extra}


def body(host: str, points: list[tuple[int, float]]) -> bytes:
    hb = HostBatch(
        host=Host(host_id=host, hostname=host, interval_seconds=5.0),
        series=[SeriesDef(metric="cpu_busy_percent")],
    )
    for ts, value in points:
        hb.snapshots.add(timestamp_ms=ts, series_index=[0], values=[value])
    return IngestRequest(batches=[hb]).SerializeToString()


def push(url: str, key: str, host: str, points: list[tuple[int, float]]) -> None:
    r = httpx.post(
        f"{url}/api/v1/ingest",
        content=body(host, points),
        headers={"authorization": f"Bearer {key}", "content-type": PROTOBUF_CONTENT_TYPE},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted_samples"] == len(points)


def history(url: str, token: str, host: str, start_ms: int, end_ms: int) -> dict[int, float]:
    r = httpx.get(
        f"{url}/api/v1/hosts/{host}/metrics/cpu_busy_percent/history",
        params={"start": str(start_ms), "end": str(end_ms), "tier": "raw", "step": "5s"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return {p["ts_ms"]: p["value"] for s in data["series"] for p in s["points"]}


def raw_blocks(url: str, token: str) -> float:
    r = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=30)
    for line in r.text.splitlines():
        if line.startswith('hostpulse_store_tier_blocks{tier="raw"}'):
            return float(line.split()[-1])
    return 0.0


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_backup_of_a_running_server_restores_into_a_new_directory(tmp_path: Path) -> None:
    data, restored, archive = tmp_path / "data", tmp_path / "restored", tmp_path / "b.tgz"
    now = int(time.time() * 1000)
    now -= now % 5000
    # two hours ago: compacted into blocks by maintenance (in the database); a minute ago:
    # still in the write-ahead log and the head (the server has not compacted it yet)
    old = [(now - 2 * HOUR_MS + i * 5000, float(i)) for i in range(12)]
    recent = [(now - 60_000 + i * 5000, 50.0 + i) for i in range(6)]
    server_env = env(HOSTPULSE_MAINTENANCE_INTERVAL="1")
    with CliProcess(["server", "--data-dir", str(data), "--port", "0"], env=server_env) as srv:
        url = srv.url()
        admin = login(url, "admin", PASSWORD)["access_token"]
        key = agent_key(url, admin, "db-1")
        push(url, key, "db-1", old)
        wait_until(lambda: raw_blocks(url, admin) > 0, 120, "maintenance to compact old samples")
        push(url, key, "db-1", recent)
        result = run_cli(["backup", "--data-dir", str(data), str(archive)], env=env())
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"backup written: {archive}" in result.stdout
        later = [(now + 5000, 99.0)]
        push(url, key, "db-1", later)  # after the backup: not in it
    assert (archive.stat().st_mode & 0o777) == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "store/hostpulse.db" in names and "jwt-secret" in names
    assert any(n.startswith("store/hostpulse.wal/") for n in names)

    result = run_cli(["restore", str(archive), "--data-dir", str(restored)], env=env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert (restored.stat().st_mode & 0o777) == 0o700

    # a second restore into the now non-empty directory is refused and changes nothing
    before = sorted(p.relative_to(restored) for p in restored.rglob("*"))
    again = run_cli(["restore", str(archive), "--data-dir", str(restored)], env=env())
    assert again.returncode == 2 and "is not empty" in again.stderr
    assert sorted(p.relative_to(restored) for p in restored.rglob("*")) == before

    with CliProcess(["server", "--data-dir", str(restored), "--port", "0"], env=env()) as srv:
        url = srv.url()
        # the users came back with the database: the same password signs in
        admin = login(url, "admin", PASSWORD)["access_token"]
        got = history(url, admin, "db-1", now - 3 * HOUR_MS, now + 60_000)
        assert got == dict(old + recent)
        # the restored agent key still pushes
        push(url, key, "db-1", later)


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tgz"
    with tarfile.open(bogus, "w:gz") as tar:
        evil = tmp_path / "evil"
        evil.write_text("x")
        tar.add(evil, arcname="../evil")
    target = tmp_path / "new"
    result = run_cli(["restore", str(bogus), "--data-dir", str(target)])
    assert result.returncode == 2 and "unexpected entry '../evil'" in result.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_backup_names_the_missing_store(tmp_path: Path) -> None:
    result = run_cli(["backup", "--data-dir", str(tmp_path / "nothing"), str(tmp_path / "o.tgz")])
    assert result.returncode == 2
    assert "no store in" in result.stderr and "--data-dir" in result.stderr
    assert not (tmp_path / "o.tgz").exists()
