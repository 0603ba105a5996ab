"""The write-ahead log on its own: group commit through its writer thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from hostpulse.store.wal import WriteAheadLog


def _wal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hostpulse-wal"]


pytestmark = pytest.mark.anyio


async def test_concurrent_records_are_durable_in_order_and_close_ends_the_writer(
    tmp_path: Path,
) -> None:
    before = len(_wal_threads())
    wal = WriteAheadLog(tmp_path)
    assert list(wal.read_existing()) == []
    wal.finish_replay()
    payloads = [f"record {i}".encode() * (i + 1) for i in range(50)]
    begun = [wal.begin(p, i) for i, p in enumerate(payloads)]
    await asyncio.gather(*(fut for _, fut in begun))  # acknowledged: on disk
    for seg, _ in begun:
        wal.applied(seg)
    more = wal.begin(b"after the first group", 99)  # a group commit after the others
    await more[1]
    wal.applied(more[0])
    await wal.close()
    assert len(_wal_threads()) == before  # no thread left behind by a closed log
    again = WriteAheadLog(tmp_path)
    assert [p for _, p in again.read_existing()] == [*payloads, b"after the first group"]
    again.finish_replay()
    await again.close()


async def test_rotate_returns_once_the_closed_segments_records_are_applied(
    tmp_path: Path,
) -> None:
    wal = WriteAheadLog(tmp_path)
    list(wal.read_existing())
    wal.finish_replay()
    first = wal.current
    seg, durable = wal.begin(b"not yet in the head", 1)
    await durable
    rotating = asyncio.ensure_future(wal.rotate())
    for _ in range(20):  # the new segment is open, but the closed one's record is not applied
        await asyncio.sleep(0)
    assert not rotating.done() and first.closed and wal.current is not first
    wal.applied(seg)
    assert await asyncio.wait_for(rotating, 60) == [first]  # (a guard, not a timing)
    await wal.close()
