"""Top-process lists are kept as history (at most one per 30 s) and queried by time."""

from __future__ import annotations

import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.store import SQLiteStore

pytestmark = pytest.mark.anyio


async def test_process_history_every_30_seconds_across_compaction(
    store: SQLiteStore, clock: FakeClock
) -> None:
    rows = [(T0 + i * 5000, [1.0, 2.0, 3.0, 4.0, 5.0]) for i in range(360)]  # 30 minutes
    for i in range(0, 180, 6):
        await store.ingest(request(batch("h1", rows[i : i + 6], processes=True)), T0)
    kept = [s.ts_ms for s in await store.process_history("h1", T0, T0 + 3_600_000)]
    assert kept == [T0 + k * 30_000 for k in range(30)]
    clock.now_ms = T0 + 20 * 60_000
    await store.maintain(clock.now_ms)  # the first two windows become blocks
    for i in range(180, 360, 6):
        await store.ingest(request(batch("h1", rows[i : i + 6], processes=True)), T0)
    kept = [s.ts_ms for s in await store.process_history("h1", T0, T0 + 3_600_000)]
    assert kept == [T0 + k * 30_000 for k in range(60)]

    at = T0 + 3 * 60_000 + 12_000  # "who used the CPU at 00:03:12"
    snap = await store.processes("h1", at)
    assert snap is not None and snap.ts_ms == T0 + 3 * 60_000
    (top,) = snap.top_cpu
    assert (top.name, top.user, top.cpu_percent, top.pid) == ("busy", "root", 50.0, 180_000 % 1000)
    assert snap.top_memory[0].rss_bytes == snap.ts_ms
    latest = await store.processes("h1")
    assert latest is not None and latest.ts_ms == T0 + 59 * 30_000
    assert await store.processes("h1", T0 - 1) is None
    assert await store.processes("nobody") is None
    clock.now_ms = T0 + 3_600_000
    await store.maintain(clock.now_ms)
    kept = [s.ts_ms for s in await store.process_history("h1", T0 + 600_000, T0 + 1_200_000)]
    assert kept == [T0 + 600_000 + k * 30_000 for k in range(21)]
