"""The kept rows of histories that reach the present (``SealedCache``): a repeated read is
answered without reading a block, and every change of the stored blocks (compaction of new
samples or of a late one, merging of partial rollups, retention) gives the
answer a read without the cache gives; a commit that changes no block keeps them. The cache is
bounded in bytes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text
from storekit import T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore, open_store, rollup
from hostpulse.store.blockread import Sealed, SealedCache, Selected
from hostpulse.store.reads import KeptPoints, _within
from hostpulse.store.schema import Kind, blocks
from hostpulse.store.types import RangeResult, Retention, Tier

pytestmark = pytest.mark.anyio
HOUR = 3_600_000
DAY = 86_400_000
SERIES = (("cpu_busy_percent", ()), ("memory_used_bytes", ()))


def _rows(start: int, end: int, every: int = 60_000) -> list[tuple[int, list[float]]]:
    return [
        (t, [float((t // every) % 97), float(t // 1000 % 5000)]) for t in range(start, end, every)
    ]


def _points(res: RangeResult) -> list[tuple[Any, ...]]:
    return [
        (s.metric, s.labels, p.ts_ms, p.value, p.min, p.max, p.count)
        for s in res.series
        for p in s.points
    ]


class Reads:
    """Counts the reads that go to the database (``BlockReader._read``)."""

    def __init__(self, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        reader = store.reader._block_reader()
        real = reader._read

        def counted(*args: Any) -> Any:
            self.n += 1
            return real(*args)

        monkeypatch.setattr(reader, "_read", counted)


async def _read(
    store: SQLiteStore, start: int, end: int, tier: Tier, **kw: Any
) -> list[tuple[Any, ...]]:
    """The answer with the kept rows, checked against one without them."""
    got = await store.query_range("h1", "cpu_busy_percent", start, end, tier=tier, **kw)
    reader = store.reader._block_reader()
    kept = reader.sealed
    reader.sealed = SealedCache()
    try:
        fresh = await store.query_range("h1", "cpu_busy_percent", start, end, tier=tier, **kw)
    finally:
        reader.sealed = kept
    assert _points(got) == _points(fresh)
    return _points(got)


async def test_repeated_reads_come_from_memory_until_blocks_change(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.ingest(request(batch("h1", _rows(T0, T0 + 3 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 3 * HOUR
    await store.maintain(clock.now_ms)  # hours 0-2 in blocks (the grace keeps the newest)
    reads = Reads(store, monkeypatch)
    first = await _read(store, T0, clock.now_ms, Tier.MINUTE)
    assert len(first) == 180
    n = reads.n
    # the range moves on with the clock: still answered from memory
    for k in range(1, 4):
        later = await _read(store, T0 + k * 60_000, clock.now_ms + k * 1000, Tier.MINUTE)
        assert later == first[k:]
    assert reads.n == n + 3  # only the reads without the cache (``_read``'s second query)

    # new samples, compacted: the next read sees them
    await store.ingest(request(batch("h1", _rows(T0 + 3 * HOUR, T0 + 6 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 6 * HOUR
    await store.maintain(clock.now_ms)
    got = await _read(store, T0, clock.now_ms, Tier.MINUTE)
    assert len(got) == 360 and got[:180] == first
    got_hours = await _read(store, T0, clock.now_ms, Tier.HOUR, step_ms=HOUR)
    assert [p[6] for p in got_hours] == [60] * 6

    # the day is over: the partial rollups of its windows are merged into one block
    clock.now_ms = T0 + 2 * DAY
    await store.maintain(clock.now_ms)
    assert await _minute_blocks(store) == 1
    assert await _read(store, T0, clock.now_ms, Tier.MINUTE) == got
    assert await _read(store, T0, clock.now_ms, Tier.HOUR, step_ms=HOUR) == got_hours


async def _minute_blocks(store: SQLiteStore) -> int:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(blocks.c.id).where(blocks.c.kind == int(Kind.MINUTE)))
        return len(rows.all())


async def test_an_earlier_start_is_read_again(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.ingest(request(batch("h1", _rows(T0, T0 + 4 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 5 * HOUR
    await store.maintain(clock.now_ms)
    late = await _read(store, T0 + 2 * HOUR, clock.now_ms, Tier.MINUTE)
    whole = await _read(store, T0, clock.now_ms, Tier.MINUTE)
    assert len(whole) == 240 and whole[120:] == late
    # an end before the watermark is read on its own, not kept
    part = await _read(store, T0, T0 + HOUR - 1, Tier.MINUTE)
    assert part == whole[:60]


async def test_commits_that_change_no_block_keep_the_rows(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: the server's other writes to the same file (alert state, sessions, last-seen
    times, a new host's registration, another host's blocks) left the kept rows unusable, and
    every read decoded blocks again."""
    await store.ingest(request(batch("h1", _rows(T0, T0 + 3 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 4 * HOUR
    await store.maintain(clock.now_ms)  # all of h1 in blocks
    first = await _read(store, T0, clock.now_ms, Tier.MINUTE)
    assert len(first) == 180
    reads = Reads(store, monkeypatch)
    await store._save_last_seen()
    async with store.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE other (x INTEGER)"))
        await conn.execute(text("INSERT INTO other VALUES (1)"))
    # another host arrives and its first windows are compacted: h1's blocks are as they were
    h2 = _rows(clock.now_ms, clock.now_ms + HOUR)
    await store.ingest(request(batch("h2", h2, SERIES)), T0)
    clock.now_ms += 2 * HOUR
    await store.maintain(clock.now_ms)
    got = await store.query_range("h1", "cpu_busy_percent", T0, clock.now_ms, tier=Tier.MINUTE)
    assert _points(got) == first
    assert reads.n == 0


async def test_a_late_sample_is_in_the_next_read(store: SQLiteStore, clock: FakeClock) -> None:
    await store.ingest(request(batch("h1", _rows(T0, T0 + 3 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 3 * HOUR
    await store.maintain(clock.now_ms)
    first = await _read(store, T0, clock.now_ms, Tier.MINUTE)
    v = first[0][3]
    assert first[0][3:] == (v, v, v, 1)
    # a sample of the first, long compacted minute arrives late: in the head, then in blocks
    late = [(T0 + 30_000, [v + 100.0, 1.0])]
    await store.ingest(request(batch("h1", late, SERIES)), clock.now_ms)
    both = (v + 50.0, v, v + 100.0, 2)
    assert (await _read(store, T0, clock.now_ms, Tier.MINUTE))[0][3:] == both
    await store.maintain(clock.now_ms)
    got = await _read(store, T0, clock.now_ms, Tier.MINUTE)
    assert got[0][3:] == both and got[1:] == first[1:]


async def test_a_compaction_during_a_read_is_in_its_answer(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """A read whose snapshot of the blocks is older than a compaction that commits while it
    runs would miss the windows that compaction moved out of the head: it reads again."""
    await store.ingest(request(batch("h1", _rows(T0, T0 + 3 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 3 * HOUR
    reader = store.reader._block_reader()
    real = reader._read
    entered, go = threading.Event(), threading.Event()
    calls = 0

    def held(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        got = real(*args)  # the snapshot before the compaction
        if calls == 1:
            entered.set()
            go.wait(10)
        return got

    reader._read = held  # type: ignore[method-assign]
    task = asyncio.create_task(
        store.query_range("h1", "cpu_busy_percent", T0, clock.now_ms, tier=Tier.MINUTE)
    )
    await asyncio.to_thread(entered.wait, 10)
    await store.maintain(clock.now_ms)  # hours 0-2 leave the head for blocks
    go.set()
    got = _points(await task)
    reader._read = real  # type: ignore[method-assign]
    assert len(got) == 180 and got == await _read(store, T0, clock.now_ms, Tier.MINUTE)
    assert calls == 2


async def test_retention_drops_kept_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(
        tmp_path,
        clock=clock,
        retention=Retention(raw=DAY // 1000, minute=DAY // 1000, hour=3 * DAY // 1000),
    )
    await store.start()
    try:
        await store.ingest(request(batch("h1", _rows(T0, T0 + 2 * HOUR), SERIES)), T0)
        clock.now_ms = T0 + 3 * HOUR
        await store.maintain(clock.now_ms)
        start = T0 - 10 * DAY
        assert len(await _read(store, start, clock.now_ms, Tier.HOUR, step_ms=HOUR)) == 2
        clock.now_ms = T0 + 4 * DAY  # the hour tier's retention has passed
        await store.maintain(clock.now_ms)
        assert await _read(store, start, clock.now_ms, Tier.HOUR, step_ms=HOUR) == []
    finally:
        await store.close()


def _entry(rows: int) -> Sealed:
    z = np.zeros(0, dtype=np.int64)
    r = rollup.Rows(np.zeros(rows, np.int64), *(np.zeros((rows, 1)) for _ in range(5)))
    return Sealed(0, 0, DAY, z, z, z, np.zeros(rows, dtype=np.intp), r)


def test_kept_rows_are_bounded_in_bytes() -> None:
    cache = SealedCache(limit=100_000)
    for i in range(100):
        cache.put((1, i, b""), _entry(200))  # 200 rows: 11.2 KB each
    assert 0 < cache.bytes <= 100_000
    assert len(cache) == 100_000 // _entry(200).nbytes
    assert cache.get((1, 99, b"")) is not None
    assert cache.get((1, 0, b"")) is None
    cache.put((1, 100, b""), _entry(20_000))  # larger than the whole cache: not kept
    assert cache.get((1, 100, b"")) is None and cache.bytes <= 100_000


async def test_a_series_added_later_is_in_the_next_answer(store: SQLiteStore) -> None:
    sda = (("disk_busy_percent", (("device", "sda"),)),)
    sdb = (("disk_busy_percent", (("device", "sdb"),)),)
    await store.ingest(request(batch("h1", [(T0, [1.0])], sda)), T0)
    got = await store.query_range("h1", "disk_busy_percent", T0, T0 + HOUR)
    assert [s.labels for s in got.series] == [(("device", "sda"),)]
    await store.ingest(request(batch("h1", [(T0 + 5000, [2.0])], sdb)), T0)
    got = await store.query_range("h1", "disk_busy_percent", T0, T0 + HOUR)
    assert sorted(s.labels for s in got.series) == [(("device", "sda"),), (("device", "sdb"),)]
    only = await store.query_range(
        "h1", "disk_busy_percent", T0, T0 + HOUR, labels={"device": "sdb"}
    )
    assert [p.value for s in only.series for p in s.points] == [2.0]


async def test_kept_rows_and_points_of_a_range_moving_past_blocks(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """A range that moves on past whole blocks (the kept rows' first blocks no longer
    selected) and starts inside a bucket: with the kept rows and the kept points, each
    answer is that of a read with neither."""
    for h in range(6):  # one compaction an hour: a partial block of rollups each
        await store.ingest(
            request(batch("h1", _rows(T0 + h * HOUR, T0 + (h + 1) * HOUR), SERIES)), T0
        )
        clock.now_ms = T0 + (h + 1) * HOUR
        await store.maintain(clock.now_ms)
    await store.ingest(
        request(batch("h1", _rows(clock.now_ms, clock.now_ms + 600_000), SERIES)), T0
    )
    reader = store.reader
    blocks_reader = reader._block_reader()
    for step, tier in ((60_000, Tier.MINUTE), (300_000, Tier.MINUTE), (HOUR, Tier.HOUR)):
        for k in range(8):
            start, end = T0 + k * 47 * 60_000 + k * 7_001, clock.now_ms + k * 1000
            got = await store.query_range(
                "h1", "cpu_busy_percent", start, end, step_ms=step, tier=tier
            )
            kept, sealed = reader._kept, blocks_reader.sealed
            reader._kept, blocks_reader.sealed = KeptPoints(), SealedCache()
            try:
                fresh = await store.query_range(
                    "h1", "cpu_busy_percent", start, end, step_ms=step, tier=tier
                )
            finally:
                reader._kept, blocks_reader.sealed = kept, sealed
            assert _points(got) == _points(fresh), (step, k)
            assert _points(got)


def test_ordered_rows_are_cut_as_the_masks_take_them() -> None:
    """Bisection of ordered kept rows keeps exactly the rows, in order, that the masks keep:
    repeated timestamps, rows at the range's ends and at the kept buckets' edges."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        ts = np.sort(rng.integers(0, 40, size=int(rng.integers(0, 30)))) * 1000
        vals = rng.random((len(ts), 2))
        rows = rollup.Rows(ts, vals, vals * 2, vals, vals, vals)
        first, whole, from_, end = (int(x) * 1000 for x in np.sort(rng.integers(-2, 42, 4)))
        if rng.random() < 0.3:
            from_ = whole
        cut = _within(Selected(rows, None, ordered=True), first, end, whole, from_)
        taken = _within(Selected(rows), first, end, whole, from_)
        got = rollup.concat(cut, 2)
        want = rollup.concat(taken, 2)
        assert got.ts.tolist() == want.ts.tolist()
        assert got.sum.tolist() == want.sum.tolist()
