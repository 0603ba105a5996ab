"""Idempotent ingest: resends, out-of-order and late (back-filled) samples."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from storekit import SERIES, T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore, open_store
from hostpulse.store.exceptions import InvalidRequestError
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


async def test_a_request_the_store_cannot_represent_stores_nothing(
    store: SQLiteStore, tmp_path: Path
) -> None:
    good = batch("good", _rows(0, 4))
    bad = batch("bad", _rows(0, 4))
    bad.snapshots[2].series_index[1] = 99  # no such series in the table
    with pytest.raises(InvalidRequestError, match=r"batches\[1\]\.snapshots\[2\]"):
        await store.ingest(request(good, bad), T0)
    uneven = batch("good", _rows(0, 1))
    uneven.snapshots[0].values.append(1.0)
    with pytest.raises(InvalidRequestError, match="5 series_index, 6 values"):
        await store.ingest(request(uneven), T0)
    assert (await store.stats()).raw_samples == 0
    assert await store.latest("good") == []
    await store.close()
    reopened = open_store(tmp_path / "data")
    await reopened.start()
    try:
        assert (await reopened.stats()).raw_samples == 0
    finally:
        await reopened.close()


async def test_unchanged_series_table_is_recognised_without_registration(
    store: SQLiteStore,
) -> None:
    for i in range(0, 12, 4):
        await store.ingest(request(batch("h1", _rows(i, 4))), T0)
    head = store.heads["h1"]
    assert len(head.tables) == 1  # the same cache key for every request
    assert len(head.columns) == 5
    # a changed table (one more series) maps the known series to the same columns
    wider = batch("h1", [(T0 + 99_000, [1, 2, 3, 4, 5, 6])], (*SERIES, ("cpu_load5", ())))
    await store.ingest(request(wider), T0)
    assert len(head.tables) == 2 and len(head.columns) == 6
    assert {v.metric: v.value for v in await store.latest("h1")}["cpu_load5"] == 6


async def test_many_new_hosts_at_once_are_registered_together(store: SQLiteStore) -> None:
    reqs = [request(batch(f"host-{i:03d}", _rows(i, 2))) for i in range(60)]
    reqs += reqs[:5]  # the same host twice while its registration is still queued
    results = await asyncio.gather(*(store.ingest(r, T0) for r in reqs))
    assert sum(r.accepted for r in results) == 60 * 10
    assert sum(r.duplicates for r in results) == 5 * 10
    assert len(await store.hosts()) == 60
    for i in (0, 59):
        series = await store.series(f"host-{i:03d}")
        assert [s.metric for s in series] == [m for m, _ in SERIES]
        latest = {v.metric: v.value for v in await store.latest(f"host-{i:03d}")}
        assert latest["memory_used_bytes"] == 1000.0 * (i + 1)


async def test_host_metadata_of_one_registration_round_is_the_last_requests(
    tmp_path: Path, clock: FakeClock
) -> None:
    """New and changed hosts are written in a few statements for a whole registration round;
    a host that appears twice in a round ends with the metadata of its last request, in
    memory and in the database (read back after a restart)."""
    store = open_store(tmp_path / "data", clock=clock)
    await store.start()
    try:
        first = [batch(f"host-{i}", _rows(0, 1)) for i in range(30)]
        again = batch("host-3", _rows(1, 1))
        again.host.hostname, again.host.kernel = "renamed.example", "6.18"
        moved = batch("host-4", _rows(1, 1))
        moved.unsupported.append("gpu_busy_percent")
        await asyncio.gather(*(store.ingest(request(b), T0) for b in [*first, again, moved]))
        host3 = await store.host("host-3")
        assert host3 is not None and (host3.hostname, host3.kernel) == ("renamed.example", "6.18")
        changed = batch("host-5", _rows(2, 1))
        changed.host.os = "freebsd"
        await store.ingest(request(changed), T0)
    finally:
        await store.close()
    store = open_store(tmp_path / "data", clock=clock)
    await store.start()
    try:
        hosts = {h.host_id: h for h in await store.hosts()}
        assert len(hosts) == 30
        assert (hosts["host-3"].hostname, hosts["host-3"].kernel) == ("renamed.example", "6.18")
        assert hosts["host-4"].unsupported == ["gpu_busy_percent"]
        assert hosts["host-5"].os == "freebsd" and hosts["host-6"].os == "linux"
        assert hosts["host-0"].first_seen_ms == T0
        assert len(await store.series("host-29")) == len(SERIES)
    finally:
        await store.close()


async def test_series_ids_given_at_registration_are_the_databases(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Registration gives hosts and series their ids and writes them behind the request: the
    head's ids must be the table's, whatever mix of new hosts, new series of known hosts and
    a host sent twice one round holds, so that blocks written under those ids read back after
    a restart."""
    store = open_store(tmp_path / "data", clock=clock)
    await store.start()
    wider = (*SERIES, ("cpu_load5", ()), ("cpu_load15", ()))
    try:
        await store.ingest(request(batch("old", _rows(0, 1))), T0)
        reqs = [
            request(
                batch(f"h{i}", [(T0, [1000.0 * k for k in range(2 + i % 4)])], SERIES[: 2 + i % 4])
            )
            for i in range(20)
        ]
        reqs.append(request(batch("old", [(T0 + 5000, [1, 2, 3, 4, 5, 6, 7])], wider)))
        reqs.append(request(batch("h3", [(T0 + 20_000, [1, 2, 3, 4, 5, 6, 7])], wider)))
        await asyncio.gather(*(store.ingest(r, T0) for r in reqs))
        await store.registrar.flush()  # written behind the requests
        async with store.engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT ts_hosts.host_id, ts_series.id, metric, ts_series.labels FROM ts_series "
                "JOIN ts_hosts ON ts_hosts.id = ts_series.host_key"
            )
            stored = {(h, sid, m, lab) for h, sid, m, lab in rows.all()}
            keys = await conn.exec_driver_sql("SELECT host_id, id FROM ts_hosts")
            host_keys = dict(keys.all())
        in_head = {
            (
                h,
                c.series_id,
                c.metric,
                json.dumps([list(p) for p in c.labels], separators=(",", ":")),
            )
            for h, head in store.heads.items()
            for c in head.columns
        }
        assert in_head == stored and len(stored) == 7 + 7 + sum(2 + i % 4 for i in range(19))
        assert {h: head.key for h, head in store.heads.items()} == host_keys
        clock.now_ms = T0 + 3_600_000
        await store.maintain(clock.now_ms)  # blocks name the series by id
    finally:
        await store.close()
    store = open_store(tmp_path / "data", clock=clock)
    await store.start()
    try:
        latest = {v.metric: v.value for v in await store.latest("h3")}
        assert latest["cpu_load15"] == 7 and latest["memory_used_bytes"] == 2
        got = await store.query_range("h3", "cpu_load1", T0 - 60_000, T0 + 60_000, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for s in got.series for p in s.points] == [
            (T0, 2000.0),
            (T0 + 20_000, 3.0),
        ]
        got = await store.query_range("old", "cpu_load5", T0 - 60_000, T0 + 60_000, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for s in got.series for p in s.points] == [(T0 + 5000, 6.0)]
    finally:
        await store.close()
