"""Retention by tier with a fake clock, and a data file that stops growing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.store import open_store
from hostpulse.store.types import Retention, Tier

pytestmark = pytest.mark.anyio

DAY = 86_400_000
HOUR = 3_600_000
INTERVAL = 30_000
HOSTS = ("a", "b", "c")


def _hour_of_rows(start: int) -> list[tuple[int, list[float]]]:
    rows = []
    for t in range(start, start + HOUR, INTERVAL):
        x = (t - T0) / DAY * 2 * math.pi
        rows.append(
            (
                t,
                [
                    round(50 + 30 * math.sin(x) + (t // INTERVAL) % 7, 3),
                    float(2**33 + (t // INTERVAL) % 1000 * 4096),
                    round(1 + math.cos(x), 2),
                    float((t // INTERVAL) % 13 * 1000),
                    0.001,
                ],
            )
        )
    return rows


async def test_retention_expires_tiers_and_the_file_stops_growing(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    retention = Retention(raw=DAY // 1000, minute=2 * DAY // 1000, hour=4 * DAY // 1000)
    store = open_store(tmp_path, clock=clock, retention=retention)
    await store.start()
    sizes: dict[int, int] = {}
    try:
        for h in range(7 * 24):
            start = T0 + h * HOUR
            rows = _hour_of_rows(start)
            await store.ingest(request(*(batch(host, rows) for host in HOSTS)), start)
            if (h + 1) % 3:
                continue
            clock.now_ms = start + HOUR + 2 * 60_000
            await store.maintain(clock.now_ms)
            if (h + 1) % 24 == 0:
                sizes[(h + 1) // 24] = store.bytes_on_disk()
        now = clock.now_ms

        async def count(tier: Tier, start: int, end: int) -> int:
            got = await store.query_range("a", "cpu_busy_percent", start, end, tier=tier)
            return sum(p.count for s in got.series for p in s.points)

        assert await count(Tier.RAW, T0, now - DAY - HOUR) == 0
        assert await count(Tier.RAW, now - DAY + HOUR, now) > 0
        assert await count(Tier.MINUTE, T0, now - 2 * DAY - HOUR) == 0
        assert await count(Tier.MINUTE, now - 2 * DAY + HOUR, now) > 0
        assert await count(Tier.HOUR, T0, now - 4 * DAY - 2 * HOUR) == 0
        assert await count(Tier.HOUR, now - 4 * DAY + DAY, now) > 0
    finally:
        await store.close()
    # steady state: once every tier is at its retention (day 4), the file no longer grows
    assert sizes[7] <= sizes[5] * 1.05, sizes
    assert sizes[6] <= sizes[5] * 1.05, sizes
