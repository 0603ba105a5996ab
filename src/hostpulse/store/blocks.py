"""Turning head windows into stored blocks, and merging blocks of one group.

Pure functions over numpy arrays and bytes (no database, no event loop), so compaction can run
in a worker thread. A raw window becomes one raw block plus partial 1-minute and 1-hour rollup
blocks; partial rollups of one group (a day) are merged later (``merge_rollups``), which is
exact because count, sum, min and max combine associatively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard

from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.store import codec, rollup
from hostpulse.store.codec import FLOAT
from hostpulse.store.quantize import choose_scales
from hostpulse.store.schema import Kind

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

DAY_MS = 86_400_000
SUM_LIMIT = float(2**52)


@dataclass(slots=True)
class BlockRow:
    host_key: int
    kind: int
    group_ms: int
    start_ms: int
    end_ms: int
    samples: int
    data: bytes

    def as_dict(self) -> dict[str, int | bytes]:
        return {
            "host_key": self.host_key,
            "kind": self.kind,
            "group_ms": self.group_ms,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "samples": self.samples,
            "data": self.data,
        }


def rollup_scales(scales: U8, stats: list[F64]) -> U8:
    """Scales for rollup matrices: the raw scale, unless a sum would not fit exactly."""
    out = scales.copy()
    is_int = out != FLOAT
    if is_int.any() and stats[1].shape[0]:
        big = np.nan_to_num(np.abs(stats[1]), nan=0.0).max(axis=0)
        p10 = 10.0 ** np.where(is_int, out, 0).astype(np.float64)
        out[is_int & (big * p10 >= SUM_LIMIT)] = FLOAT
    return out


def _rollup_row(
    host_key: int, kind: Kind, rows: rollup.Rows, ids: I64, scales: U8, step: int, level: int
) -> BlockRow:
    stats = rollup.to_stats(rows)
    data = codec.encode(rows.ts, ids, stats, rollup_scales(scales, stats), level)
    group = int(rows.ts[0]) - int(rows.ts[0]) % DAY_MS
    return BlockRow(
        host_key,
        kind,
        group,
        int(rows.ts[0]),
        int(rows.ts[-1]) + step,
        int((rows.count > 0).sum()),
        data,
    )


def compact_window(
    host_key: int,
    group_ms: int,
    ts: I64,
    vals: F64,
    ids: I64,
    kmax: I64,
    lossy: npt.NDArray[np.bool_],
    level: int,
) -> list[BlockRow]:
    """Raw block + partial minute and hour rollups for one window of one host."""
    keep = ~np.isnan(vals).all(axis=0)
    rows_keep = ~np.isnan(vals).all(axis=1)
    if not keep.any():
        return []
    vals = vals[rows_keep][:, keep]
    ts = ts[rows_keep]
    ids, kmax, lossy = ids[keep], kmax[keep], lossy[keep]
    scales = choose_scales(vals, kmax, lossy)
    samples = int((~np.isnan(vals)).sum())
    raw = BlockRow(
        host_key,
        Kind.RAW,
        group_ms,
        int(ts[0]),
        int(ts[-1]) + 1,
        samples,
        codec.encode(ts, ids, [vals], scales, level),
    )
    minute = rollup.bucket(rollup.from_raw(ts, vals), rollup.MINUTE_MS)
    hour = rollup.bucket(minute, rollup.HOUR_MS)
    return [
        raw,
        _rollup_row(host_key, Kind.MINUTE, minute, ids, scales, rollup.MINUTE_MS, level),
        _rollup_row(host_key, Kind.HOUR, hour, ids, scales, rollup.HOUR_MS, level),
    ]


def positions(block: codec.Block, wanted: I64) -> list[int]:
    """The column of each series of ``wanted`` in ``block``; -1 where the block lacks it."""
    if len(wanted) <= 8:
        found = [np.flatnonzero(block.ids == sid) for sid in wanted.tolist()]
        return [int(f[0]) if len(f) else -1 for f in found]
    index = block.column_index()
    return [index.get(sid, -1) for sid in wanted.tolist()]


def _cells(block: codec.Block, wanted: I64) -> F64:
    """Every matrix of ``block`` for the series ``wanted`` as (matrices, rows, len(wanted)),
    columns in that order; a series the block lacks is all NaN."""
    cols = positions(block, wanted)
    have = np.array([j for j in cols if j >= 0], dtype=np.intp)
    out = np.full((block.mats, block.rows, len(wanted)), np.nan)
    if len(have):
        where = np.array([i for i, j in enumerate(cols) if j >= 0], dtype=np.intp)
        out[:, :, where] = block.values(have).transpose(0, 2, 1)
    return out


def _as_rows(kind: int, ts: I64, cells: F64) -> rollup.Rows:
    if kind == Kind.RAW:
        return rollup.from_raw(ts, cells[0])
    return rollup.from_stats(ts, cells[0], cells[1], cells[2], cells[3])


def rows_of(block: codec.Block, kind: int, wanted: I64) -> rollup.Rows:
    """The rows of ``block`` for the series ``wanted`` (columns in that order; absent = empty)."""
    return _as_rows(kind, block.ts, _cells(block, wanted))


def cells_of(block: codec.Block, wanted: I64) -> F64:
    """Every matrix of ``block`` for the series ``wanted``: (matrices, rows, len(wanted))."""
    return _cells(block, wanted)


def rows_of_cells(kind: int, parts: list[tuple[I64, F64]], cols: int) -> rollup.Rows:
    """Rows (not merged) of several blocks' ``(ts, cells_of(...))``, converted at once: a
    30-day read has 31 blocks."""
    if not parts:
        return rollup.empty(cols)
    if len(parts) == 1:
        return _as_rows(kind, *parts[0])
    ts = np.concatenate([t for t, _ in parts])
    return _as_rows(kind, ts, np.concatenate([c for _, c in parts], axis=1))


def merge_raw(blobs: list[bytes], host_key: int, group_ms: int, level: int) -> BlockRow:
    """One raw block from several of the same window (cells never overlap; first wins)."""
    decoded = [codec.decode(b) for b in blobs]
    ids = np.unique(np.concatenate([d.ids for d in decoded]))
    ts = np.unique(np.concatenate([d.ts for d in decoded]))
    vals = np.full((len(ts), len(ids)), np.nan)
    scales = np.zeros(len(ids), dtype=np.uint8)
    for d in decoded:
        r = np.searchsorted(ts, d.ts)
        for j, sid in enumerate(d.ids.tolist()):
            c = int(np.searchsorted(ids, sid))
            col = d.column(0, j)
            cur = vals[r, c]
            vals[r, c] = np.where(np.isnan(cur), col, cur)
            scales[c] = max(int(scales[c]), int(d.scales[j]))
    samples = int((~np.isnan(vals)).sum())
    data = codec.encode(ts, ids, [vals], scales, level)
    return BlockRow(host_key, Kind.RAW, group_ms, int(ts[0]), int(ts[-1]) + 1, samples, data)


def merge_rollups(
    blobs: list[bytes], host_key: int, kind: Kind, group_ms: int, level: int
) -> BlockRow:
    """One rollup block from partial ones of the same day: buckets combine exactly."""
    decoded = [codec.decode(b) for b in blobs]
    ids = np.unique(np.concatenate([d.ids for d in decoded]))
    scales = np.zeros(len(ids), dtype=np.uint8)
    for d in decoded:
        pos = np.searchsorted(ids, d.ids)
        scales[pos] = np.maximum(scales[pos], d.scales)
    parts = [rows_of(d, kind, ids) for d in decoded]
    step = rollup.MINUTE_MS if kind == Kind.MINUTE else rollup.HOUR_MS
    merged = rollup.bucket(rollup.concat(parts, len(ids)), step)
    row = _rollup_row(host_key, kind, merged, ids, scales, step, level)
    row.group_ms = group_ms
    return row


def encode_processes(snaps: list[Snapshot], level: int) -> bytes:
    batch = HostBatch()
    batch.snapshots.extend(sorted(snaps, key=lambda s: s.timestamp_ms))
    return zstandard.ZstdCompressor(level=level).compress(batch.SerializeToString())


def decode_processes(blob: bytes) -> list[Snapshot]:
    batch = HostBatch()
    batch.ParseFromString(zstandard.ZstdDecompressor().decompress(blob))
    return list(batch.snapshots)
