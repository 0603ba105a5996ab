"""The in-memory head's byte budget (issue 13): a host, or all hosts together, cannot make the
head hold more than the budget; a request over it is refused before anything is written, and
accepted again once maintenance has written closed windows to disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from storekit import T0, FakeClock, batch, request

from hostpulse.protocol import IngestRequest
from hostpulse.store import HeadBudget, SQLiteStore, open_store
from hostpulse.store.budget import host_bytes
from hostpulse.store.exceptions import HeadFullError

pytestmark = pytest.mark.anyio

WIDE = tuple(("cpu_core_busy_percent", (("cpu", str(c)),)) for c in range(1000))
NOW = T0 + 7 * 86_400_000
MIB = 1024 * 1024


def sparse(host: str, k: int, windows: int = 20) -> IngestRequest:
    """One snapshot of 1,000 series in each of ``windows`` past ten-minute windows: the
    request that costs the head most per byte sent."""
    start = NOW - 6 * 86_400_000 + k * windows * 600_000
    rows = [(start + w * 600_000 + 5000, [float(k)] * len(WIDE)) for w in range(windows)]
    return request(batch(host, rows, WIDE))


def assert_counted(store: SQLiteStore) -> None:
    """The running totals equal a fresh count, and no reservation is left over."""
    st = store.state
    for head in st.heads.values():
        assert head.bytes == host_bytes(head)
        assert head.reserved == 0
    assert st.head_bytes == sum(h.bytes for h in st.heads.values()) + st.compacting_bytes
    assert st.head_reserved == 0


async def _open(path: Path, budget: HeadBudget) -> SQLiteStore:
    store = open_store(path, clock=FakeClock(NOW), head_budget=budget)
    await store.start()
    return store


async def test_a_host_over_its_budget_is_refused_until_maintenance(tmp_path: Path) -> None:
    store = await _open(tmp_path, HeadBudget(per_host=2 * MIB, total=0))
    try:
        refused: IngestRequest | None = None
        stored = 0
        for k in range(100):
            req = sparse("greedy", k)
            try:
                stored += (await store.ingest(req, NOW)).accepted
            except HeadFullError as exc:
                assert not exc.whole_store
                assert "max_head_bytes_per_host" in str(exc)
                refused = req
                break
            assert store.state.heads["greedy"].bytes <= 2 * MIB
        assert refused is not None, "the head grew without bound"
        assert stored > 0
        assert_counted(store)
        wal_before = store.wal.bytes_on_disk()
        raw_before = (await store.stats()).raw_samples
        with pytest.raises(HeadFullError):
            await store.ingest(refused, NOW)
        assert store.wal.bytes_on_disk() == wal_before  # nothing of it is in the WAL
        assert (await store.stats()).raw_samples == raw_before
        # another host has a budget of its own
        other = request(batch("modest", [(NOW - 10_000, [1.0, 2.0, 3.0, 4.0, 5.0])]))
        assert (await store.ingest(other, NOW)).accepted == 5

        await store.maintain(NOW)  # the past windows go to disk
        assert store.state.heads["greedy"].bytes < 64 * 1024
        assert_counted(store)
        assert (await store.ingest(refused, NOW)).accepted == 20 * len(WIDE)
        assert (await store.stats()).raw_samples == stored + 20 * len(WIDE) + 5
    finally:
        await store.close()


async def test_all_hosts_together_are_bounded(tmp_path: Path) -> None:
    store = await _open(tmp_path, HeadBudget(per_host=0, total=3 * MIB))
    try:
        with pytest.raises(HeadFullError) as info:
            for k in range(100):
                await store.ingest(sparse(f"h{k}", k), NOW)
        assert info.value.whole_store
        assert "max_head_bytes" in str(info.value)
        assert store.state.head_bytes <= 3 * MIB
        assert_counted(store)
    finally:
        await store.close()


async def test_a_normal_host_is_never_refused(tmp_path: Path) -> None:
    """Five series every 5 s for three hours, maintenance every minute, under 64 KiB."""
    clock = FakeClock(T0)
    store = open_store(tmp_path, clock=clock, head_budget=HeadBudget(64 * 1024, 64 * 1024))
    await store.start()
    try:
        for i in range(3 * 720):
            ts = T0 + i * 5000
            clock.now_ms = ts
            await store.ingest(request(batch("h", [(ts, [1.0, 2.0, 3.0, 4.0, 5.0])])), ts)
            if i % 12 == 11:
                await store.maintain(ts)
        assert_counted(store)
        assert (await store.stats()).raw_samples == 3 * 720 * 5
    finally:
        await store.close()


async def test_replay_makes_room_instead_of_exceeding_the_budget(tmp_path: Path) -> None:
    """A WAL written without a budget (or with a larger one) is replayed under a small one:
    every acknowledged sample is kept, closed windows are written to disk on the way."""
    store = await _open(tmp_path, HeadBudget(per_host=0, total=0))
    stored = 0
    for k in range(30):
        stored += (await store.ingest(sparse("h", k), NOW)).accepted
    assert store.state.heads["h"].bytes > 4 * MIB
    await store.close()  # no compaction: all of it is in the WAL

    store = await _open(tmp_path, HeadBudget(per_host=2 * MIB, total=0))
    try:
        assert store.state.heads["h"].bytes <= 2 * MIB
        assert_counted(store)
        assert (await store.stats()).raw_samples == stored
        again = await store.ingest(sparse("h", 29), NOW)
        assert (again.accepted, again.duplicates) == (0, 20 * len(WIDE))
    finally:
        await store.close()
