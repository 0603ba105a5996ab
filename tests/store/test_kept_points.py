"""The kept points of a history's stored buckets (``reads.KeptPoints``): a repeated read
aggregates only the buckets that may hold head samples, and every answer is the one a read
without kept points gives: for ranges that move on with the clock, each step, tier and
aggregation, a head that grows, a late sample and its compaction, a merge, paged answers and
labelled series. The kept points are bounded in bytes. A read that repeats one while nothing
it reads changed is answered from the first one's points (the answer memo), and only then."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore, reads
from hostpulse.store.blockread import KeptBytes
from hostpulse.store.reads import ANSWER_BYTES, HEAD_ROWS_BYTES, KeptPoints
from hostpulse.store.types import Agg, PointArrays, RangeResult, Tier

pytestmark = pytest.mark.anyio
HOUR = 3_600_000
SERIES = (
    ("cpu_busy_percent", ()),
    ("disk_await_seconds", (("device", "sda"),)),
    ("disk_await_seconds", (("device", "sdb"),)),
)


def _rows(start: int, end: int, every: int = 5000) -> list[tuple[int, list[float]]]:
    out = []
    for t in range(start, end, every):
        sdb = float("nan") if (t // HOUR) % 3 == 0 else float(t % 7919)
        out.append((t, [float((t // 7000) % 97) / 3, float(t // 1000 % 5000), sdb]))
    return out


def _points(res: RangeResult) -> list[tuple[Any, ...]]:
    return [
        (s.metric, s.labels, p.ts_ms, p.value, p.min, p.max, p.count)
        for s in res.series
        for p in s.points
    ] + [res.next_cursor, res.step_ms, res.tier]


async def _read(store: SQLiteStore, metric: str, start: int, end: int, **kw: Any) -> int:
    """The answer with the kept points and head rows, checked against one without them; its
    points."""
    got = await store.query_range("h1", metric, start, end, **kw)
    fresh = await _fresh(store, metric, start, end, **kw)
    assert _points(got) == _points(fresh)
    return len(_points(got))


async def _fresh(store: SQLiteStore, metric: str, start: int, end: int, **kw: Any) -> RangeResult:
    """The answer of a read without kept points, head rows or answers."""
    reader = store.reader
    kept, head_kept, answers = reader._kept, reader._head_kept, reader._answers
    reader._kept = KeptPoints()
    reader._head_kept = KeptBytes(HEAD_ROWS_BYTES, lambda _: 1)
    reader._answers = KeptBytes(ANSWER_BYTES, lambda _: 1)
    try:
        return await store.query_range("h1", metric, start, end, **kw)
    finally:
        reader._kept, reader._head_kept, reader._answers = kept, head_kept, answers


CASES = [
    ("cpu_busy_percent", 60_000, Agg.AVG, None),
    ("cpu_busy_percent", 300_000, Agg.LAST, None),
    ("cpu_busy_percent", 7_000, Agg.MAX, Tier.RAW),
    ("disk_await_seconds", 60_000, Agg.MIN, None),
    ("disk_await_seconds", HOUR, Agg.AVG, None),
    ("disk_await_seconds", 2 * HOUR, Agg.LAST, Tier.MINUTE),
]


async def test_kept_points_give_the_answer_of_a_full_read(
    store: SQLiteStore, clock: FakeClock
) -> None:
    for h in range(0, 30):
        await store.ingest(
            request(batch("h1", _rows(T0 + h * HOUR, T0 + (h + 1) * HOUR), SERIES)), 0
        )
        clock.now_ms = T0 + (h + 1) * HOUR
        if h % 5 == 3:
            await store.maintain(clock.now_ms)  # some hours stay in the head
    now = clock.now_ms
    assert store.state.watermark < now - HOUR
    for k in range(6):  # the range moves on; the head grows between reads
        end = now + k * 37_000
        await store.ingest(request(batch("h1", _rows(end - 37_000, end), SERIES)), end)
        clock.now_ms = end
        for metric, step, agg, tier in CASES:
            span = 6 * HOUR if tier is Tier.RAW else 24 * HOUR
            assert await _read(store, metric, end - span, end, step_ms=step, agg=agg, tier=tier)
            # an older range inside the kept one; one reaching further back
            await _read(store, metric, end - 10 * HOUR, end - 3 * HOUR, step_ms=step, agg=agg)
            await _read(store, metric, end - 28 * HOUR, end, step_ms=step, agg=agg)
            # one page at a time
            await _read(store, metric, end - span, end, step_ms=step, agg=agg, limit=100)
            await _read(
                store, metric, end - span, end, step_ms=step, agg=agg, cursor=f"t{end - HOUR}"
            )
        if k == 2:  # a late sample in a compacted hour, in the head, then compacted
            late = [(T0 + 2 * HOUR + 1000, [99.0, 1.0, 5.0])]
            await store.ingest(request(batch("h1", late, SERIES)), end)
        if k == 4:
            await store.maintain(end)
    assert len(store.reader._kept) > 0


async def test_only_the_newest_buckets_are_aggregated_again(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.ingest(request(batch("h1", _rows(T0, T0 + 26 * HOUR), SERIES)), 0)
    clock.now_ms = T0 + 26 * HOUR
    await store.maintain(clock.now_ms)
    await store.ingest(
        request(batch("h1", _rows(T0 + 26 * HOUR, clock.now_ms + 120_000), SERIES)), 0
    )
    clock.now_ms += 120_000
    from hostpulse.store import reads

    sizes: list[int] = []
    real = reads._points

    def counted(rows: Any, j: int, agg: Agg) -> PointArrays:
        sizes.append(len(rows.ts))
        return real(rows, j, agg)

    monkeypatch.setattr(reads, "_points", counted)
    end = clock.now_ms
    assert await _read(store, "cpu_busy_percent", end - 24 * HOUR, end, step_ms=60_000) > 1400
    sizes.clear()
    await store.query_range(
        "h1", "cpu_busy_percent", end - 24 * HOUR + 5000, end + 5000, step_ms=60_000
    )
    assert sizes and max(sizes) < 60  # the head's part and the hour after the watermark


def test_kept_points_are_bounded_in_bytes() -> None:
    entry = KeptBytes.ENTRY_BYTES
    kept = KeptPoints(limit=80 * 40 + entry)
    ts = np.arange(0, 60 * 60_000, 60_000, dtype=np.int64)
    p = PointArrays(ts, ts * 1.0, ts * 1.0, ts * 1.0, np.ones(len(ts), dtype=np.int64))
    kept.put(["a"], 0, 50 * 60_000, [p])
    assert kept.get(["a"], 0) is not None and kept.kept.bytes == 50 * 40 + entry
    kept.put(["b"], 0, 50 * 60_000, [p])
    assert kept.get(["a"], 0) is None and kept.get(["b"], 60_000) is not None
    assert kept.get(["b"], -1) is None  # starts before the kept points
    kept.put(["c"], 0, 60 * 60_000, [p, p])  # larger than the limit: not kept
    assert kept.get(["c"], 0) is None and kept.kept.bytes == 50 * 40 + entry


async def test_the_answer_memo_is_bounded_for_answers_with_no_points(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """An outside check: 40,000 distinct reads of empty ranges grew the server by ~4 KB each,
    past any bound (an answer without points counted 0 bytes)."""
    await store.ingest(request(batch("h1", _rows(T0, T0 + 3 * HOUR), SERIES)), 0)
    clock.now_ms = T0 + 3 * HOUR
    await store.maintain(clock.now_ms)
    limit = 256 * 1024
    store.reader._answers = KeptBytes(limit, reads._answer_bytes)
    for i in range(400):  # minutes of a day before any data, each its own range
        start = T0 - 20 * 24 * HOUR - i * 60_000
        res = await store.query_range("h1", "cpu_busy_percent", start, start + 60_000)
        assert [p for s in res.series for p in s.points] == []
    assert store.reader._answers.bytes <= limit
    assert len(store.reader._answers) <= limit // (KeptBytes.ENTRY_BYTES + 4096)


async def test_a_range_starting_inside_a_bucket_answers_it_from_its_own_rows(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """An outside check: after a wider read, a range whose start falls inside a bucket got that
    bucket whole from the kept points (count 104 where a read of its own rows gives 5)."""
    await store.ingest(request(batch("h1", _rows(T0, T0 + 30 * HOUR), SERIES)), 0)
    clock.now_ms = T0 + 30 * HOUR
    await store.maintain(clock.now_ms - 2 * HOUR)  # the newest hours stay in the head
    end = clock.now_ms
    for metric, step, agg, tier in [*CASES, ("cpu_busy_percent", 300_000, Agg.AVG, Tier.RAW)]:
        span = 6 * HOUR if tier is Tier.RAW else 24 * HOUR
        await _read(store, metric, end - span - HOUR, end, step_ms=step, agg=agg, tier=tier)
        for offset in (1000, 37_000, step // 2, step - 5000, step):
            start = end - span + offset
            start -= start % 1000
            await _read(store, metric, start, end, step_ms=step, agg=agg, tier=tier)
            await _read(store, metric, start, end - HOUR, step_ms=step, agg=agg, tier=tier)
        # ranges that end before the watermark: their stored rows are read from the start on
        old_end = end - 4 * HOUR
        await _read(store, metric, old_end - 2 * HOUR, old_end, step_ms=step, agg=agg, tier=tier)
        for offset in (1000, 37_000, step // 2, step - 5000):
            start = old_end - HOUR + offset
            start -= start % 1000
            await _read(store, metric, start, old_end, step_ms=step, agg=agg, tier=tier)


async def test_a_sample_added_to_a_snapshot_in_the_head_is_in_the_next_answer(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """The head's rows are kept between reads while its windows stay as they are: a value that
    arrives for a timestamp the head already has (another series of that snapshot, the
    window's row count unchanged) is in the next answer, in every tier."""
    await store.ingest(request(batch("h1", _rows(T0, T0 + 6 * HOUR), SERIES)), 0)
    clock.now_ms = T0 + 6 * HOUR
    await store.maintain(clock.now_ms - 3 * HOUR)  # the newest hours stay in the head
    end = clock.now_ms
    # a minute of the one head hour without sdb values (``_rows``: (t // HOUR) % 3 == 0)
    hour = next(h for h in range(end - 3 * HOUR, end, HOUR) if (h // HOUR) % 3 == 0)
    at = hour + HOUR - 60_000
    labels = {"device": "sdb"}
    reads = [(60_000, Tier.MINUTE), (HOUR, Tier.HOUR), (5000, Tier.RAW)]
    before = []
    for step, tier in reads:
        res = await store.query_range(
            "h1", "disk_await_seconds", end - 4 * HOUR, end, labels=labels, step_ms=step, tier=tier
        )
        before.append(sum(p.count for s in res.series for p in s.points))
        await _read(store, "disk_await_seconds", end - 4 * HOUR, end, step_ms=step, tier=tier)
    rows = store.state.heads["h1"].windows[at - at % store.state.block_ms].n
    late = [(at, [float("nan"), float("nan"), 1234.0])]
    await store.ingest(request(batch("h1", late, SERIES)), end)
    assert store.state.heads["h1"].windows[at - at % store.state.block_ms].n == rows
    for (step, tier), was in zip(reads, before, strict=True):
        res = await store.query_range(
            "h1", "disk_await_seconds", end - 4 * HOUR, end, labels=labels, step_ms=step, tier=tier
        )
        points = [p for s in res.series for p in s.points]
        assert sum(p.count for p in points) == was + 1
        assert any(p.max == 1234.0 for p in points)
        await _read(store, "disk_await_seconds", end - 4 * HOUR, end, step_ms=step, tier=tier)


async def test_a_repeated_read_is_answered_from_the_memo_until_what_it_reads_changes(
    store: SQLiteStore, clock: FakeClock
) -> None:
    await store.ingest(request(batch("h1", _rows(T0, T0 + 30 * HOUR), SERIES)), 0)
    clock.now_ms = T0 + 30 * HOUR
    await store.maintain(clock.now_ms - 2 * HOUR)  # the newest hours stay in the head
    end = clock.now_ms
    metric, kw = "disk_await_seconds", {"step_ms": HOUR}

    async def read(start: int, end: int) -> RangeResult:
        got = await store.query_range("h1", metric, start, end, **kw)
        assert _points(got) == _points(await _fresh(store, metric, start, end, **kw))
        return got

    # "last 28 hours", read again 7 s, then 7.5 s later: the first read kept the stored
    # buckets (KeptPoints), the second is made with them, the third is the second's
    await read(end - 28 * HOUR, end)
    again = await read(end - 28 * HOUR + 7000, end + 7000)
    third = await read(end - 28 * HOUR + 7500, end + 7500)
    assert third.series[0] is again.series[0]  # from the memo
    # a newer sample in the head: the next read has it
    t = end + 8000
    await store.ingest(request(batch("h1", [(t, [1.0, 4321.0, 1.0])], SERIES)), t)
    grown = await read(end - 28 * HOUR + 9000, end + 9000)
    assert grown.series[0] is not again.series[0]
    assert any(p.max == 4321.0 for p in grown.series[0].points)
    assert await read(end - 28 * HOUR + 9500, end + 9500) is not None
    # a sample in the hour after the range's end, then a range that reaches it
    ahead = end + HOUR + 60_000
    await store.ingest(request(batch("h1", [(ahead, [1.0, 9999.0, 1.0])], SERIES)), ahead)
    before = await read(end - 28 * HOUR + 10_000, end + 10_000)
    assert all(p.max != 9999.0 for s in before.series for p in s.points)
    reached = await read(end - 28 * HOUR + 10_000, ahead)
    assert any(p.max == 9999.0 for p in reached.series[0].points)
    # a start that moves past the first bucket's rows; one inside a bucket
    await read(end - 27 * HOUR + 10_000, end + 10_000)
    await read(end - 27 * HOUR + 10_000, end + 11_000)
    await read(end - 26 * HOUR, end + 11_000)
    # compaction moves the head into blocks
    await store.maintain(end + 2 * HOUR)
    await read(end - 26 * HOUR, end + 12_000)
    await read(end - 26 * HOUR, end + 13_000)


async def test_answers_stay_those_of_a_fresh_read_through_random_changes(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """Random reads, repeated or moved on by a little or a lot, between random changes: new,
    late and future samples, compactions. Every answer is that of a read without anything
    kept."""
    rng = np.random.default_rng(11)
    await store.ingest(request(batch("h1", _rows(T0, T0 + 8 * HOUR, 30_000), SERIES)), 0)
    now = T0 + 8 * HOUR
    clock.now_ms = now
    await store.maintain(now - 3 * HOUR)
    reads = [
        (metric, step, agg, tier, span)
        for metric, step, agg, tier in CASES
        for span in (2 * HOUR, 7 * HOUR)
    ]
    hits = 0
    for _ in range(120):
        metric, step, agg, tier, span = reads[int(rng.integers(len(reads)))]
        if tier is Tier.RAW:
            span = min(span, 5 * HOUR)
        for _ in range(int(rng.integers(1, 4))):
            end = now + int(rng.choice([0, 1000, 30_000, 300_000]))
            start = end - span + int(rng.choice([0, 1000, 7000]))
            got = await store.query_range(
                "h1", metric, start, end, step_ms=step, agg=agg, tier=tier
            )
            fresh = await _fresh(store, metric, start, end, step_ms=step, agg=agg, tier=tier)
            assert _points(got) == _points(fresh)
            again = await store.query_range(
                "h1", metric, start, end, step_ms=step, agg=agg, tier=tier
            )
            hits += again.series[0] is got.series[0]
        change = rng.random()
        if change < 0.3:  # the clock and the head move on
            await store.ingest(request(batch("h1", _rows(now, now + 40_000), SERIES)), now)
            now += 40_000
            clock.now_ms = now
        elif change < 0.4:  # a late sample, then maybe one from the future
            at = now - int(rng.integers(1, 5 * 3600)) * 1000
            await store.ingest(request(batch("h1", [(at, [7.0, 8.0, 9.0])], SERIES)), now)
            if rng.random() < 0.5:
                ahead = now + int(rng.integers(1, 600)) * 1000
                await store.ingest(request(batch("h1", [(ahead, [3.0, 2.0, 1.0])], SERIES)), now)
        elif change < 0.5:
            await store.maintain(now - int(rng.integers(0, 2)) * HOUR)
    assert hits > 100  # most repeats were answered from the memo
