"""Idempotent ingest: resends, out-of-order and late (back-filled) samples."""

from __future__ import annotations

import asyncio

import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore
from hostpulse.store.types import Tier

pytestmark = pytest.mark.anyio

NAN = float("nan")


def _rows(first: int, n: int) -> list[tuple[int, list[float]]]:
    return [
        (T0 + i * 5000, [i % 100 + 0.5, 1000.0 * i, i / 4, 10.0 * i, i * 1e-6])
        for i in range(first, first + n)
    ]


async def _raw(store: SQLiteStore, metric: str) -> list[tuple[int, float]]:
    got = await store.query_range("h1", metric, T0 - 86_400_000, T0 + 86_400_000, tier=Tier.RAW)
    return [(p.ts_ms, p.value) for s in got.series for p in s.points]


async def test_resent_batch_stores_nothing_twice(store: SQLiteStore) -> None:
    req = request(batch("h1", _rows(0, 4)))
    first = await store.ingest(req, T0)
    again = await store.ingest(req, T0)
    assert (first.accepted, first.duplicates) == (20, 0)
    assert (again.accepted, again.duplicates) == (0, 20)
    assert (await store.stats()).raw_samples == 20
    assert len(await _raw(store, "cpu_busy_percent")) == 4


async def test_partial_overlap_stores_only_the_new_samples(store: SQLiteStore) -> None:
    await store.ingest(request(batch("h1", [(T0, [1.0, 2.0, NAN, NAN, NAN])])), T0)
    res = await store.ingest(request(batch("h1", [(T0, [9.0, 9.0, 3.0, 4.0, 5.0])])), T0)
    assert (res.accepted, res.duplicates) == (3, 2)
    # the first value stored for (series, timestamp) is kept
    assert await _raw(store, "cpu_busy_percent") == [(T0, 1.0)]
    assert await _raw(store, "cpu_load1") == [(T0, 3.0)]


async def test_out_of_order_snapshots_come_back_sorted(store: SQLiteStore) -> None:
    rows = _rows(0, 10)
    await store.ingest(request(batch("h1", rows[5:])), T0)
    await store.ingest(request(batch("h1", rows[:5])), T0)
    assert await _raw(store, "cpu_load1") == [(t, v[2]) for t, v in rows]


async def test_late_samples_merge_into_compacted_blocks(
    store: SQLiteStore, clock: FakeClock
) -> None:
    rows = _rows(0, 720)  # one hour
    await store.ingest(request(batch("h1", rows[::2])), T0)  # every other snapshot
    clock.now_ms = T0 + 2 * 3_600_000
    await store.maintain(clock.now_ms)
    assert store.heads["h1"].windows == {}
    # the back-fill arrives after compaction, oldest first, then is resent
    late = request(batch("h1", rows[1::2]))
    res = await store.ingest(late, clock.now_ms)
    assert (res.accepted, res.duplicates) == (360 * 5, 0)
    again = await store.ingest(late, clock.now_ms)
    assert (again.accepted, again.duplicates) == (0, 360 * 5)
    expected = [(t, v[1]) for t, v in rows]
    assert await _raw(store, "memory_used_bytes") == expected
    clock.now_ms += 3_600_000
    await store.maintain(clock.now_ms)
    assert await _raw(store, "memory_used_bytes") == expected
    assert (await store.stats()).raw_samples == 720 * 5
    again = await store.ingest(late, clock.now_ms)
    assert again.accepted == 0
    # rollups include the late samples exactly once
    got = await store.query_range("h1", "memory_used_bytes", T0, T0 + 3_599_999, tier=Tier.HOUR)
    (point,) = got.series[0].points
    assert point.count == 720
    assert point.value == sum(v for _, v in expected) / 720


async def test_concurrent_ingests_share_the_log_and_all_land(store: SQLiteStore) -> None:
    rows = _rows(0, 200)
    reqs = [request(batch("h1", rows[i : i + 4])) for i in range(0, 200, 4)]
    results = await asyncio.gather(*(store.ingest(r, T0) for r in reqs))
    assert sum(r.accepted for r in results) == 1000
    assert len(await _raw(store, "disk_await_seconds")) == 200


async def test_several_hosts_in_one_request_are_kept_apart(store: SQLiteStore) -> None:
    await store.ingest(
        request(batch("a", [(T0, [1, 2, 3, 4, 5])]), batch("b", [(T0, [6, 7, 8, 9, 10])])), T0
    )
    assert [h.host_id for h in await store.hosts()] == ["a", "b"]
    a = {v.metric: v.value for v in await store.latest("a")}
    b = {v.metric: v.value for v in await store.latest("b")}
    assert a["cpu_busy_percent"] == 1 and b["cpu_busy_percent"] == 6
    host = await store.host("b")
    assert host is not None and host.hostname == "b.example" and host.last_seen_ms == T0
