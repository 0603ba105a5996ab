"""The query path's block reader returns what decoding the whole stored blob returns: for
blocks read whole with the SELECT and for large ones read in part (blob I/O), for one series,
several, more than eight (the other lookup), series a block lacks, and a range that ends
inside the stored blocks."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import insert, select

from hostpulse.store import SQLiteStore, codec, rollup
from hostpulse.store.blockread import WHOLE_BYTES, BlockCache
from hostpulse.store.blocks import DAY_MS, BlockRow, rows_of
from hostpulse.store.codec import FLOAT
from hostpulse.store.schema import Kind, blocks, hosts

pytestmark = pytest.mark.anyio
DAY0 = 1_767_225_600_000


def _stats(rng: np.random.Generator, rows: int, cols: int) -> list[np.ndarray]:
    count = rng.integers(1, 13, (rows, cols)).astype(np.float64)
    mean = np.cumsum(rng.integers(-30, 30, (rows, cols)), axis=0) / 100.0
    stats = [count, mean * count, mean - 1.0, mean + 1.0]
    absent = rng.random((rows, cols)) < 0.1
    for m in stats:
        m[absent] = np.nan
    return stats


async def _put(
    store: SQLiteStore, kind: Kind, day: int, ids: np.ndarray, rows: int, seed: int
) -> bytes:
    rng = np.random.default_rng(seed)
    step = rollup.MINUTE_MS if kind == Kind.MINUTE else rollup.HOUR_MS
    ts = day + np.arange(rows, dtype=np.int64) * step
    scales = rng.choice(np.array([2, 3, FLOAT], dtype=np.uint8), len(ids))
    data = codec.encode(ts, ids, _stats(rng, rows, len(ids)), scales)
    row = BlockRow(1, kind, day, int(ts[0]), int(ts[-1]) + step, rows * len(ids), data)
    async with store.engine.begin() as conn:
        await conn.execute(insert(blocks), [row.as_dict()])
    return data


def _same(a: rollup.Rows, b: rollup.Rows) -> None:
    for name in ("ts", "count", "sum", "min", "max", "last"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


async def test_partial_and_whole_reads_match_full_decoding(store: SQLiteStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(hosts).values(id=1, host_id="h1"))
    ids = np.arange(5, 5 + 3 * 170, 3, dtype=np.int64)
    big = [await _put(store, Kind.MINUTE, DAY0 + d * DAY_MS, ids, 1440, d) for d in range(3)]
    assert all(len(b) > WHOLE_BYTES for b in big)
    small = [
        await _put(store, Kind.HOUR, DAY0 + d * DAY_MS, ids[:20], 24, 10 + d) for d in range(3)
    ]
    assert all(len(b) <= WHOLE_BYTES for b in small)
    reader = store.reader._block_reader()
    wanted_sets = [ids[[7]], ids[[3, 40, 120]], ids[::13], np.array([4, int(ids[2]), 10**9])]
    for kind, blobs in ((Kind.MINUTE, big), (Kind.HOUR, small)):
        for wanted in wanted_sets:
            got = await reader.rows(1, kind, DAY0, DAY0 + 3 * DAY_MS, DAY_MS, wanted)
            want = rollup.concat(
                [rows_of(codec.decode(b), kind, wanted) for b in blobs], len(wanted)
            )
            _same(got, want)
        # a range ending inside the second day: the first two blocks only
        got = await reader.rows(1, kind, DAY0, DAY0 + DAY_MS + 5, DAY_MS, ids[[1]])
        want = rollup.concat([rows_of(codec.decode(b), kind, ids[[1]]) for b in blobs[:2]], 1)
        _same(got, want)
    async with store.engine.connect() as conn:
        assert len((await conn.execute(select(blocks.c.id))).all()) == 6


async def test_cached_reads_follow_a_block_replaced_under_the_same_row_id(
    store: SQLiteStore,
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(hosts).values(id=1, host_id="h1"))
    ids = np.arange(1, 200, dtype=np.int64)
    first = await _put(store, Kind.MINUTE, DAY0, ids, 1440, 1)
    reader = store.reader._block_reader()
    wanted = ids[[4, 150]]
    want = rows_of(codec.decode(first), Kind.MINUTE, wanted)
    for _ in range(2):  # the second read is answered from the cache
        _same(await reader.rows(1, Kind.MINUTE, DAY0, DAY0 + DAY_MS, DAY_MS, wanted), want)
    assert reader.cache.bytes > 0
    # a merge deletes blocks and inserts one, which may get a deleted row's id
    async with store.engine.begin() as conn:
        [rowid] = (await conn.execute(select(blocks.c.id))).scalars().all()
        await conn.execute(blocks.delete())
    second = await _put(store, Kind.MINUTE, DAY0, ids, 1000, 2)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(blocks.c.id))).scalars().all() == [rowid]
    got = await reader.rows(1, Kind.MINUTE, DAY0, DAY0 + DAY_MS, DAY_MS, wanted)
    _same(got, rows_of(codec.decode(second), Kind.MINUTE, wanted))


def test_cache_is_bounded_in_bytes() -> None:
    cache = BlockCache(limit=10_000)
    for i in range(50):
        cache.put((i, 0, 0, 0, 0, b""), (np.zeros(100, np.int64), np.zeros((4, 100, 1))))
    assert 0 < cache.bytes <= 10_000
    assert cache.get((49, 0, 0, 0, 0, b"")) is not None
    assert cache.get((0, 0, 0, 0, 0, b"")) is None
