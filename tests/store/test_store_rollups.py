"""1-minute and 1-hour rollups against an independent computation; tier choice; steps."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore, rollup
from hostpulse.store.types import Agg, Tier

pytestmark = pytest.mark.anyio

SERIES = (("cpu_busy_percent", ()), ("memory_used_bytes", ()))
HOURS = 3


def _generated() -> list[tuple[int, list[float]]]:
    """Three hours at a jittered ~5 s interval with gaps; values at storage resolution."""
    rnd = random.Random(42)
    rows: list[tuple[int, list[float]]] = []
    t = T0
    while t < T0 + HOURS * 3_600_000:
        if rnd.random() > 0.05:  # 5 % of snapshots missing
            rows.append((t, [rnd.randint(0, 100_000) / 1000, float(rnd.randint(0, 2**40))]))
        t += 5000 + rnd.randint(-200, 200)
    return rows


def _expected(rows: list[tuple[int, list[float]]], j: int, step: int) -> dict[int, tuple]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, vals in rows:
        buckets[t - t % step].append(vals[j])
    return {k: (sum(v) / len(v), min(v), max(v), len(v)) for k, v in buckets.items()}


async def _check(store: SQLiteStore, rows: list[tuple[int, list[float]]]) -> None:
    end = T0 + HOURS * 3_600_000 - 1
    for tier, step in ((Tier.MINUTE, 60_000), (Tier.HOUR, 3_600_000)):
        for j, (metric, _) in enumerate(SERIES):
            got = await store.query_range("h1", metric, T0, end, tier=tier)
            assert got.tier is tier and got.step_ms == step
            points = {p.ts_ms: (p.value, p.min, p.max, p.count) for p in got.series[0].points}
            want = _expected(rows, j, step)
            assert points.keys() == want.keys()
            for ts, (avg, lo, hi, count) in want.items():
                g_avg, g_lo, g_hi, g_count = points[ts]
                assert (g_lo, g_hi, g_count) == (lo, hi, count), (tier, metric, ts)
                assert g_avg == pytest.approx(avg, rel=1e-12), (tier, metric, ts)


async def test_rollups_match_an_independent_computation(
    store: SQLiteStore, clock: FakeClock
) -> None:
    rows = _generated()
    for i in range(0, len(rows), 4):
        await store.ingest(request(batch("h1", rows[i : i + 4], SERIES)), T0)
    await _check(store, rows)  # from the head, aggregated on the fly
    clock.now_ms = T0 + 2 * 3_600_000
    await store.maintain(clock.now_ms)  # the first two hours are blocks now
    await _check(store, rows)
    clock.now_ms = T0 + 2 * 86_400_000
    await store.maintain(clock.now_ms)  # all compacted, partial rollups merged
    await _check(store, rows)
    stats = await store.stats()
    assert stats.hour_points == HOURS * 2
    assert stats.minute_points == sum(len(_expected(rows, j, 60_000)) for j in range(2))


async def test_tier_follows_range_and_step(store: SQLiteStore, clock: FakeClock) -> None:
    rows = [(T0 + i * 5000, [float(i % 50), float(i)]) for i in range(720)]
    await store.ingest(request(batch("h1", rows, SERIES)), T0)
    clock.now_ms = T0 + 3_600_000
    hour = 3_600_000
    cases = [
        (T0, T0 + hour, None, Tier.RAW),
        (T0, T0 + 6 * hour, None, Tier.RAW),
        (T0, T0 + 24 * hour, None, Tier.MINUTE),
        (T0, T0 + 7 * 24 * hour, None, Tier.MINUTE),
        (T0, T0 + 30 * 24 * hour, None, Tier.HOUR),
        (T0, T0 + 24 * hour, 10_000, Tier.RAW),
        (T0, T0 + hour, 300_000, Tier.MINUTE),
        (T0, T0 + hour, 3_600_000, Tier.HOUR),
    ]
    for start, end, step, tier in cases:
        got = await store.query_range("h1", "cpu_busy_percent", start, end, step_ms=step)
        assert got.tier is tier, (end - start, step)
        assert sum(p.count for p in got.series[0].points) == 720
    # a raw range older than raw retention is served from the minute tier
    clock.now_ms = T0 + 8 * 24 * hour
    got = await store.query_range("h1", "cpu_busy_percent", T0, T0 + hour)
    assert got.tier is Tier.MINUTE


async def test_step_aggregation_and_pagination(store: SQLiteStore) -> None:
    rows = [(T0 + i * 5000, [float(i), float(i)]) for i in range(120)]  # 10 minutes
    await store.ingest(request(batch("h1", rows, SERIES)), T0)
    end = T0 + 600_000 - 1
    for agg in (Agg.AVG, Agg.MIN, Agg.MAX, Agg.LAST):
        got = await store.query_range("h1", "cpu_busy_percent", T0, end, step_ms=120_000, agg=agg)
        assert [p.ts_ms for p in got.series[0].points] == [T0 + k * 120_000 for k in range(5)]
        for k, p in enumerate(got.series[0].points):
            chunk = [float(i) for i in range(24 * k, 24 * k + 24)]
            want = {
                Agg.AVG: sum(chunk) / 24,
                Agg.MIN: min(chunk),
                Agg.MAX: max(chunk),
                Agg.LAST: chunk[-1],
            }[agg]
            assert p.value == want and p.count == 24 and (p.min, p.max) == (chunk[0], chunk[-1])
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        page = await store.query_range(
            "h1", "cpu_busy_percent", T0, end, tier=Tier.RAW, limit=50, cursor=cursor
        )
        seen += [p.ts_ms for p in page.series[0].points]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [t for t, _ in rows]


async def test_values_near_the_float_maximum_give_finite_averages(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """Found by the property test of issue 13 item 3: validation accepts any finite value, but
    the 1-minute and 1-hour sums of values near 1.8e308 overflowed to inf (an average of inf,
    which JSON cannot carry) and compaction warned of overflow. Averages stay within
    [min, max]."""
    rows = [(T0 + i * 5000, [1.7e308, -1.7e308, 1e300, 5e-324, 1.0]) for i in range(24)]
    await store.ingest(request(batch("h", rows)), T0)
    clock.now_ms = T0 + 3_600_000
    await store.maintain(clock.now_ms)
    for metric, value in (("cpu_busy_percent", 1.7e308), ("memory_used_bytes", -1.7e308)):
        for tier in (Tier.MINUTE, Tier.HOUR):
            got = await store.query_range(
                metric=metric, host_id="h", start_ms=T0, end_ms=clock.now_ms, tier=tier, agg=Agg.AVG
            )
            points = got.series[0].points
            assert points and all(p.value == p.min == p.max == value for p in points)


async def test_last_of_an_hour_in_the_head_is_its_newest_sample(store: SQLiteStore) -> None:
    """An hour spans six head windows: read from the head, the hour's ``last`` is the newest
    sample of all of them (stored rollups keep no last value: there it is the mean)."""
    rows = _generated()
    for i in range(0, len(rows), 4):
        await store.ingest(request(batch("h1", rows[i : i + 4], SERIES)), T0)
    newest: dict[int, float] = {}
    for t, vals in rows:
        newest[t - t % 3_600_000] = vals[0]
    end = T0 + HOURS * 3_600_000 - 1
    got = await store.query_range("h1", "cpu_busy_percent", T0, end, tier=Tier.HOUR, agg=Agg.LAST)
    assert {p.ts_ms: p.value for p in got.series[0].points} == newest


async def test_a_back_fill_compacts_into_one_rollup_block_per_day(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """Hours of history arriving at once are compacted in one pass: one 1-minute and one
    1-hour block per day, not one of each per window (which later reads read in pieces)."""
    from sqlalchemy import func, select

    from hostpulse.store.schema import Kind, blocks

    rows = _generated()
    clock.now_ms = T0 + 30 * 3_600_000
    for i in range(0, len(rows), 200):
        await store.ingest(request(batch("h1", rows[i : i + 200], SERIES)), clock.now_ms)
    await store.compactor.compact(clock.now_ms)
    async with store.engine.connect() as conn:
        counts = dict(
            (await conn.execute(select(blocks.c.kind, func.count()).group_by(blocks.c.kind))).all()
        )
    assert counts[Kind.MINUTE] == 1 and counts[Kind.HOUR] == 1
    assert counts[Kind.RAW] == HOURS * 6  # one per 10-minute window
    await _check(store, rows)


def test_bucketing_rows_already_one_per_bucket_gives_the_general_result() -> None:
    """``rollup.bucket`` of sorted rows, one per bucket (a history at its tier's step) skips
    the reductions: the result is that of the same rows in another order (the general path),
    with absent cells, NaN and sums past the float maximum."""
    rng = np.random.default_rng(7)
    n, step = 500, 60_000
    ts = T0 + np.sort(rng.choice(3 * n, n, replace=False)).astype(np.int64) * step
    count = rng.integers(0, 3, (n, 3)).astype(np.float64)
    val = rng.standard_normal((n, 3)) * 1e300
    lo = np.where(rng.random((n, 3)) < 0.1, np.nan, val - 1)
    with np.errstate(over="ignore"):
        total = np.where(count > 0, val * 1e9, 0.0)  # some beyond the float maximum
    rows = rollup.Rows(ts, count, total, lo, val + 1, val)
    fast = rollup.bucket(rows, step)
    back = np.arange(n)[::-1]
    general = rollup.bucket(
        rollup.Rows(*(a[back] for a in (ts, count, rows.sum, lo, rows.max, rows.last))), step
    )
    for name in ("ts", "count", "sum", "min", "max", "last"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)
    assert np.isfinite(fast.sum).all()


def test_bucketing_rows_in_time_order_gives_the_sorted_result_and_leaves_them() -> None:
    """Rows already in time order, several per bucket (a history's stored rows and the head's
    newer ones) are reduced where they are: the result is bit for bit that of the same rows
    out of order (sorted first, each bucket's rows in their order), and the rows the caller
    passed (shared kept rows) are unchanged."""
    rng = np.random.default_rng(11)
    n, step = 400, 600_000
    ts = T0 + np.sort(rng.integers(0, 40 * step, n)).astype(np.int64)
    count = rng.integers(0, 3, (n, 2)).astype(np.float64)
    val = rng.standard_normal((n, 2)) * 3e307
    lo = np.where(count > 0, val - 1, np.nan)
    total = np.where(count > 0, val, 0.0)  # the sums of some buckets pass the float maximum
    last = np.where(rng.random((n, 2)) < 0.3, np.nan, val)
    cols = (ts, count, total, lo, val + 1, last)
    before = [a.copy() for a in cols]
    ordered = rollup.bucket(rollup.Rows(*cols), step)
    # the buckets in reverse, each bucket's rows in their order: sorting restores the order
    key = ts - ts % step
    back = np.lexsort((np.arange(n), -key))
    shuffled = rollup.bucket(rollup.Rows(*(a[back] for a in cols)), step)
    for name in ("ts", "count", "sum", "min", "max", "last"):
        got, want = getattr(ordered, name), getattr(shuffled, name)
        assert got.tobytes() == want.tobytes(), name
    assert len(ordered.ts) == len(np.unique(key)) < n
    assert np.isfinite(ordered.sum).all()
    for a, b in zip(cols, before, strict=True):
        assert a.tobytes() == b.tobytes()
