"""The JSON kept of a history's stored points (``PointsJsonCache``) gives the same bytes as
encoding every point: for a range that moves on with the clock, for each aggregation and step,
and after the stored blocks change (a late sample compacted, a merge). The cache is bounded."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from storekit import T0, FakeClock, batch, request

from hostpulse.server import query_service as qs
from hostpulse.store import SQLiteStore, open_store
from hostpulse.store.types import Agg, PointArrays

pytestmark = pytest.mark.anyio
HOUR = 3_600_000
DAY = 86_400_000
SERIES = (("cpu_busy_percent", ()), ("memory_used_bytes", ()))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = open_store(tmp_path / "data", clock=FakeClock())
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def _rows(start: int, end: int) -> list[tuple[int, list[float]]]:
    return [(t, [float((t // 7000) % 97) / 3, float(t % 5000)]) for t in range(start, end, 5000)]


async def _both(
    store: SQLiteStore, start: int, end: int, step: int, agg: Agg = Agg.AVG
) -> tuple[bytes, bytes]:
    """The answer through the kept JSON, and encoded whole."""
    kept = await qs.history_body(
        store, "h1", "cpu_busy_percent", {}, start, end, step_ms=step, agg=agg, tier=None
    )
    res = await store.query_range("h1", "cpu_busy_percent", start, end, step_ms=step, agg=agg)
    res.stable = None
    whole = qs.history_json("h1", "cpu_busy_percent", start, end, agg, res)
    return kept, whole


async def test_kept_points_give_the_bytes_of_a_whole_encoding(store: SQLiteStore) -> None:
    clock = store.state.clock
    assert isinstance(clock, FakeClock)
    await store.ingest(request(batch("h1", _rows(T0, T0 + 6 * HOUR), SERIES)), T0)
    clock.now_ms = T0 + 6 * HOUR
    await store.maintain(clock.now_ms)  # all but the newest window in blocks
    before = len(qs.POINTS_JSON)
    for step, agg in ((60_000, Agg.AVG), (60_000, Agg.MAX), (300_000, Agg.LAST), (HOUR, Agg.MIN)):
        for k in range(4):  # the range moves on, as a dashboard's "last 6 hours"
            end = clock.now_ms + k * 37_000
            kept, whole = await _both(store, end - 6 * HOUR, end, step, agg)
            assert kept == whole
    assert len(qs.POINTS_JSON) == before + 4  # one kept JSON per step and aggregation

    # a late sample in an old minute: in the head first, then compacted into a new block
    late = [(T0 + HOUR + 1000, [99.0, 1.0])]
    await store.ingest(request(batch("h1", late, SERIES)), clock.now_ms)
    kept, whole = await _both(store, T0, clock.now_ms, 60_000)
    assert kept == whole and b'"max":99.0' in kept
    await store.maintain(clock.now_ms)
    kept, whole = await _both(store, T0, clock.now_ms, 60_000)
    assert kept == whole and b'"max":99.0' in kept
    # the next day: partial rollups merged into one block, new samples in the head
    await store.ingest(request(batch("h1", _rows(T0 + DAY, T0 + DAY + HOUR), SERIES)), T0)
    clock.now_ms = T0 + DAY + HOUR
    await store.maintain(clock.now_ms)
    for step in (60_000, HOUR):
        kept, whole = await _both(store, clock.now_ms - DAY - HOUR, clock.now_ms, step)
        assert kept == whole and b'"max":99.0' in kept


def _arrays(n: int) -> PointArrays:
    ts = np.arange(n, dtype=np.int64) * 60_000 + T0
    v = np.arange(n, dtype=np.float64) / 7
    return PointArrays(ts, v, v - 1, v + 1, np.full(n, 12, dtype=np.int64))


def test_kept_json_is_cut_to_the_points_asked_and_bounded() -> None:
    cache = qs.PointsJsonCache(limit=200_000)
    a = _arrays(1440)
    assert cache.encode(a, "k", 1000) == qs.points_json(a)
    later = qs.PointArrays(*(c[300:] for c in (a.ts_ms, a.value, a.min, a.max, a.count)))
    assert cache.encode(later, "k", 700) == qs.points_json(later)  # cut from the kept JSON
    assert cache.encode(later, "k", 1140) == qs.points_json(later)  # more than kept: again
    for i in range(10):
        cache.encode(a, i, 1440)
    assert 0 < cache.kept.bytes <= 200_000 and len(cache) < 10


async def test_a_range_starting_inside_a_bucket_gets_that_buckets_own_numbers(
    store: SQLiteStore,
) -> None:
    """The first bucket of a range that starts inside it holds only the rows from the start
    on: the JSON kept of a wider read (the same bucket whole) must not be cut for it."""
    from hostpulse.store.reads import KeptPoints
    from hostpulse.store.types import Tier

    clock = store.state.clock
    await store.ingest(request(batch("h1", _rows(T0, T0 + 30 * HOUR), SERIES)), 0)
    clock.now_ms = T0 + 30 * HOUR
    await store.maintain(clock.now_ms - 2 * HOUR)
    end = clock.now_ms
    for step, tier in ((7000, Tier.RAW), (300_000, Tier.RAW), (300_000, None), (HOUR, None)):
        # the wider read keeps its JSON
        await qs.history_body(
            store,
            "h1",
            "cpu_busy_percent",
            {},
            end - 7 * HOUR,
            end,
            step_ms=step,
            agg=Agg.MAX,
            tier=tier,
        )
        for offset in (1000, 3000, 4000, 6000, 37_000, step // 2):
            start = end - 6 * HOUR + offset
            kept = await qs.history_body(
                store,
                "h1",
                "cpu_busy_percent",
                {},
                start,
                end,
                step_ms=step,
                agg=Agg.MAX,
                tier=tier,
            )
            store.reader._kept = KeptPoints()  # a read of the rows alone
            res = await store.query_range(
                "h1", "cpu_busy_percent", start, end, step_ms=step, agg=Agg.MAX, tier=tier
            )
            res.stable = None
            assert kept == qs.history_json("h1", "cpu_busy_percent", start, end, Agg.MAX, res)
