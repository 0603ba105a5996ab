"""Restart and crash recovery from the write-ahead log."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.protocol import IngestRequest
from hostpulse.store import open_store
from hostpulse.store.types import Tier
from hostpulse.store.wal import WriteAheadLog

pytestmark = pytest.mark.anyio

ROWS = [(T0 + i * 5000, [i + 0.5, 1000.0 * i, i / 4, 10.0 * i, i * 1e-6]) for i in range(100)]

CRASHER = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from storekit import T0, batch, request
from hostpulse.store import open_store

ROWS = [(T0 + i * 5000, [i + 0.5, 1000.0 * i, i / 4, 10.0 * i, i * 1e-6]) for i in range(100)]

async def main() -> None:
    store = open_store(sys.argv[1])
    await store.start()
    for i in range(0, 100, 4):
        await store.ingest(request(batch("h1", ROWS[i : i + 4], processes=True)), T0)
    print("durable", flush=True)
    await asyncio.sleep(600)  # killed here, never closed

asyncio.run(main())
"""


async def _assert_all_there(data: Path, clock: FakeClock) -> None:
    store = open_store(data, clock=clock)
    await store.start()
    try:
        got = await store.query_range("h1", "memory_used_bytes", T0, T0 + 3_600_000, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for p in got.series[0].points] == [(t, v[1]) for t, v in ROWS]
        latest = {v.metric: v for v in await store.latest("h1")}
        assert latest["cpu_load1"].ts_ms == ROWS[-1][0]
        assert latest["cpu_load1"].value == ROWS[-1][1][2]
        assert (await store.stats()).raw_samples == 500
        res = await store.ingest(request(batch("h1", ROWS)), clock.now_ms)
        assert res.accepted == 0
    finally:
        await store.close()


async def test_close_without_compaction_then_reopen(tmp_path: Path, clock: FakeClock) -> None:
    store = open_store(tmp_path, clock=clock)
    await store.start()
    await store.ingest(request(batch("h1", ROWS)), T0)
    await store.close()
    await store.close()  # safe twice
    await _assert_all_there(tmp_path, clock)


async def test_reopen_after_compaction_serves_latest_from_blocks(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = open_store(tmp_path, clock=clock)
    await store.start()
    await store.ingest(request(batch("h1", ROWS)), T0)
    clock.now_ms = T0 + 3 * 3_600_000
    await store.maintain(clock.now_ms)
    await store.close()
    wal = list((tmp_path / "hostpulse.wal").iterdir())
    assert len(wal) == 1 and wal[0].stat().st_size == 0  # compacted segments were dropped
    await _assert_all_there(tmp_path, clock)


async def test_killed_process_loses_nothing_acknowledged(tmp_path: Path, clock: FakeClock) -> None:
    kit = Path(__file__).parent
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHER, str(tmp_path), str(kit), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line.strip() == b"durable"
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), timeout=30)
    # a torn record at the end of the log (a crash in the middle of a write) is dropped
    (segment,) = (tmp_path / "hostpulse.wal").iterdir()
    with segment.open("ab") as fh:
        fh.write(b"\x40\x00\x00\x00\x01\x02\x03")
    await _assert_all_there(tmp_path, clock)
    store = open_store(tmp_path, clock=clock)
    await store.start()
    try:
        snap = await store.processes("h1")
        assert snap is not None and snap.ts_ms == ROWS[-1][0] - ROWS[-1][0] % 30_000
    finally:
        await store.close()


LOCKED_OUT = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from storekit import SERIES, T0, batch, request
from hostpulse.store import open_store

async def main() -> None:
    store = open_store(sys.argv[1])
    await store.start()
    await store.ingest(request(batch("old", [(T0, [1, 2, 3, 4, 5])])), T0)
    await store.registrar.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    wider = (*SERIES, ("cpu_load5", ()))
    for i in range(20):
        rows = [(T0 + 5000, [i, 2, 3, 4, 5, 6])]
        await store.ingest(request(batch(f"new-{i}", rows, wider), batch("old", rows, wider)), T0)
    print("durable", flush=True)
    await asyncio.sleep(600)  # killed here, never closed

asyncio.run(main())
"""


async def test_hosts_and_series_not_yet_in_the_database_come_back_from_the_log(
    tmp_path: Path, clock: FakeClock
) -> None:
    """New hosts and series are written to the database behind the requests that brought
    them. A process killed before that write (here: another connection holds the database's
    write lock) loses none of them: replay creates them from the log, with ids that do not
    collide with the stored ones, and the samples are there."""
    kit = Path(__file__).parent
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCKED_OUT,
        str(tmp_path),
        str(kit),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    blocker = sqlite3.connect(tmp_path / "hostpulse.db", isolation_level=None)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).strip() == b"ready"
        blocker.execute("BEGIN IMMEDIATE")  # the registrations cannot be written now
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        assert (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).strip() == b"durable"
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), timeout=30)
        blocker.execute("ROLLBACK")
    assert blocker.execute("SELECT count(*) FROM ts_hosts").fetchone() == (1,)
    blocker.close()
    store = open_store(tmp_path, clock=clock)
    await store.start()
    try:
        assert len(await store.hosts()) == 21
        for host in ("old", "new-7"):
            latest = {v.metric: v.value for v in await store.latest(host)}
            assert latest["cpu_load5"] == 6 and latest["memory_used_bytes"] == 2
        assert (await store.stats()).series == 21 * 6
    finally:
        await store.close()
    check = sqlite3.connect(tmp_path / "hostpulse.db")
    try:
        stored = check.execute("SELECT count(*), count(DISTINCT id) FROM ts_series").fetchone()
        assert stored == (21 * 6, 21 * 6)
    finally:
        check.close()


DISK_FULL = """
import asyncio, resource, signal, sys
sys.path.insert(0, sys.argv[2])
from storekit import T0, batch, request
from hostpulse.store import open_store
from hostpulse.store.exceptions import StoreUnavailableError

ROWS = [(T0 + i * 5000, [i + 0.5, 1000.0 * i, i / 4, 10.0 * i, i * 1e-6]) for i in range(30)]

async def main() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG
    store = open_store(sys.argv[1])
    await store.start()
    await store.ingest(request(batch("h1", ROWS[:10])), T0)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # the log may grow by 100 bytes only: the next record is written in part, then fails
    limit = store.wal.current.path.stat().st_size + 100
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        await store.ingest(request(batch("h1", ROWS[10:20])), T0)
        print("stored", flush=True)
    except StoreUnavailableError as exc:
        print("refused:", exc, flush=True)
    print("ready", await store.ready(), flush=True)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print("ready", await store.ready(), flush=True)
    await store.ingest(request(batch("h1", ROWS[20:])), T0)
    await store.close()

asyncio.run(main())
"""


async def test_a_failed_log_write_refuses_that_request_and_keeps_the_later_ones(
    tmp_path: Path, clock: FakeClock
) -> None:
    # a real failing write (a file size limit, as a full disk does): the request is refused
    # (StoreUnavailableError), the store is not ready meanwhile, and the partial record it
    # left must not hide the requests acknowledged after it when the log is replayed
    kit = Path(__file__).parent
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DISK_FULL,
        str(tmp_path),
        str(kit),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("refused: the store cannot write"), lines
    assert lines[1:] == ["ready False", "ready True"]
    rows = [(T0 + i * 5000, 1000.0 * i) for i in range(30)]
    store = open_store(tmp_path, clock=clock)
    await store.start()
    try:
        got = await store.query_range("h1", "memory_used_bytes", T0, T0 + 3_600_000, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for p in got.series[0].points] == rows[:10] + rows[20:]
    finally:
        await store.close()


async def test_replay_skips_what_ingest_refuses(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 13 item 1: a record of far-past snapshots (one head window each) was replayed at
    # every start; now replay drops the snapshots older than the raw retention, logs it, and
    # keeps the rest of the record
    data = tmp_path / "data"
    store = open_store(data, clock=clock)
    await store.start()
    far = [(1_000_000_000_000 + i * 600_000, [1.0, 2.0, 3.0, 4.0, 5.0]) for i in range(300)]
    await store.ingest(request(batch("h1", [*far, ROWS[0]])), T0)
    await store.close()
    again = open_store(data, clock=clock)
    with caplog.at_level("ERROR"):
        await again.start()
    try:
        assert "skipping 300 snapshots" in caplog.text
        assert list(again.heads["h1"].windows) == [T0]
        assert (await again.stats()).raw_samples == 5
    finally:
        await again.close()


def _oldest_in_wal(wal_dir: Path) -> int:
    """The oldest sample timestamp in the log's segments."""
    log = WriteAheadLog(wal_dir)
    stamps = [
        s.timestamp_ms
        for _, payload in log.read_existing()
        for b in IngestRequest.FromString(payload).batches
        for s in b.snapshots
    ]
    return min(stamps)


async def test_a_compacted_window_leaves_the_log_with_its_compaction(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Live ingest every 5 s with maintenance every minute: compacting the first window drops
    the log of everything but the last minute or so before the next window began (the log
    holds ~1-13 minutes of requests, not 11-22), and nothing acknowledged is lost."""
    store = open_store(tmp_path, clock=clock)
    await store.start()
    step = 5000
    rows = [(T0 + i * step, [float(i), 1.0, 2.0, 3.0, 4.0]) for i in range(12 * 60_000 // step)]
    for ts, values in rows:
        clock.now_ms = ts
        await store.ingest(request(batch("h1", [(ts, values)])), ts)
        if (ts - T0) % 60_000 == 60_000 - step:
            await store.maintain(ts)
    assert store.watermark == T0 + 600_000  # the first window is compacted ...
    # ... and the log keeps only what the head still needs, from the last run before it
    assert _oldest_in_wal(tmp_path / "hostpulse.wal") >= T0 + 600_000 - 60_000
    await store.close()
    store = open_store(tmp_path, clock=clock)
    await store.start()
    try:
        got = await store.query_range("h1", "cpu_busy_percent", T0, rows[-1][0] + 1, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for p in got.series[0].points] == [(t, v[0]) for t, v in rows]
    finally:
        await store.close()


async def test_replayed_windows_already_stored_leave_the_head_at_start(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The log still holds requests of a window compacted before the restart: replaying them
    finds every sample stored, and the window is not kept in the head (every read checked it
    until the next compaction); a resent sample of it is still a duplicate, a new one stored."""
    store = open_store(tmp_path, clock=clock)
    await store.start()
    step = 5000
    rows = [(T0 + i * step, [float(i), 1.0, 2.0, 3.0, 4.0]) for i in range(12 * 60_000 // step)]
    clock.now_ms = rows[-1][0]
    await store.ingest(request(batch("h1", rows)), clock.now_ms)  # one record, two windows
    await store.maintain(clock.now_ms)
    assert store.watermark == T0 + 600_000
    assert _oldest_in_wal(tmp_path / "hostpulse.wal") < T0 + 600_000  # replayed at start
    await store.close()
    store = open_store(tmp_path, clock=clock)
    await store.start()
    try:
        assert list(store.heads["h1"].windows) == [T0 + 600_000]
        assert store.head_bytes == sum(h.bytes for h in store.heads.values()) > 0
        got = await store.query_range("h1", "cpu_busy_percent", T0, rows[-1][0] + 1, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for p in got.series[0].points] == [(t, v[0]) for t, v in rows]
        res = await store.ingest(request(batch("h1", rows[100:102])), clock.now_ms)
        assert (res.accepted, res.duplicates) == (0, 10)
        late = [(T0 + 2500, [7.0, 1.0, 2.0, 3.0, 4.0])]
        assert (await store.ingest(request(batch("h1", late)), clock.now_ms)).accepted == 5
        got = await store.query_range("h1", "cpu_busy_percent", T0, T0 + 4999, tier=Tier.RAW)
        assert [p.value for p in got.series[0].points] == [0.0, 7.0]
    finally:
        await store.close()
