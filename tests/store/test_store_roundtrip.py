"""Samples posted come back from current and history queries unchanged."""

from __future__ import annotations

import math

import pytest
from storekit import SERIES, T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore
from hostpulse.store.types import Tier

pytestmark = pytest.mark.anyio


def _rows(n: int, start: int = T0, step: int = 5000) -> list[tuple[int, list[float]]]:
    out = []
    for i in range(n):
        out.append(
            (
                start + i * step,
                [
                    round(20 + 10 * math.sin(i / 7), 3),
                    float(8_000_000_000 + 4096 * i),
                    0.25 * (i % 9),
                    1234.56 + i,
                    0.000125 * (i % 5),
                ],
            )
        )
    return out


async def test_current_and_raw_history_return_what_was_posted(store: SQLiteStore) -> None:
    rows = _rows(30)
    res = await store.ingest(request(batch("h1", rows)), T0)
    assert (res.accepted, res.duplicates) == (150, 0)
    latest = {v.metric: v for v in await store.latest("h1")}
    ts_last, vals_last = rows[-1]
    for (metric, labels), value in zip(SERIES, vals_last, strict=True):
        assert latest[metric].ts_ms == ts_last
        assert latest[metric].value == value
        assert latest[metric].labels == labels
    for j, (metric, _) in enumerate(SERIES):
        got = await store.query_range("h1", metric, T0, T0 + 3_600_000, tier=Tier.RAW)
        assert got.tier is Tier.RAW and got.step_ms == 5000  # raw: the agent's interval
        (series,) = got.series
        assert [(p.ts_ms, p.value) for p in series.points] == [(t, v[j]) for t, v in rows]


async def test_history_after_compaction_is_identical(store: SQLiteStore, clock: FakeClock) -> None:
    rows = _rows(300)
    await store.ingest(request(batch("h1", rows)), T0)
    clock.now_ms = T0 + 2 * 3_600_000
    await store.maintain(clock.now_ms)
    assert not store.heads["h1"].windows  # everything is in blocks now
    for j, (metric, _) in enumerate(SERIES):
        got = await store.query_range("h1", metric, T0, T0 + 3_600_000, tier=Tier.RAW)
        assert [(p.ts_ms, p.value) for p in got.series[0].points] == [(t, v[j]) for t, v in rows]
    stats = await store.stats()
    assert stats.raw_samples == 300 * len(SERIES)


async def test_quantised_units_round_within_resolution_others_are_lossless(
    store: SQLiteStore, clock: FakeClock
) -> None:
    table = (
        ("cpu_busy_percent", ()),  # 0.001 percentage points
        ("network_receive_bytes_per_second", (("interface", "eth0"),)),  # 0.01 B/s
        ("disk_await_seconds", (("device", "sda"),)),  # 1 microsecond
        ("my_custom_metric", ()),  # unknown to the catalog: lossless
        ("cpu_load1", ()),  # unit-less: lossless
    )
    rows = [
        (T0 + i * 5000, [100 / 3 + i / 7, 1e6 / 7 * i, 0.1234567891 * i, 1 / 3 + i, math.pi * i])
        for i in range(240)
    ]
    await store.ingest(request(batch("h1", rows, table)), T0)
    tolerance = [0.0005, 0.005, 0.0000005, 0.0, 0.0]

    async def check(exact: bool) -> None:
        for j, (metric, _) in enumerate(table):
            got = await store.query_range("h1", metric, T0, T0 + 3_600_000, tier=Tier.RAW)
            points = got.series[0].points
            assert [p.ts_ms for p in points] == [t for t, _ in rows]
            for p, (_, vals) in zip(points, rows, strict=True):
                if exact or tolerance[j] == 0.0:
                    assert p.value == vals[j], metric
                else:
                    assert abs(p.value - vals[j]) <= tolerance[j], metric

    await check(exact=True)  # still in the head
    clock.now_ms = T0 + 2 * 3_600_000
    await store.maintain(clock.now_ms)
    await check(exact=False)  # in blocks
