"""Aggregation of sample rows into time buckets: 1-minute and 1-hour rollups at compaction,
merging of partial rollups, and the step aggregation of queries. Everything works on columns
(``rows x series``) with numpy reductions, never per sample in Python."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


@dataclass(slots=True)
class Rows:
    """Rollup rows: per bucket timestamp and column a count, sum, min, max and the last value.
    Absent cells have count 0 (sum 0, min/max/last NaN)."""

    ts: I64
    count: F64
    sum: F64
    min: F64
    max: F64
    last: F64

    @property
    def cols(self) -> int:
        return int(self.count.shape[1])

    def take(self, keep: npt.NDArray[np.bool_]) -> Rows:
        return Rows(
            self.ts[keep],
            self.count[keep],
            self.sum[keep],
            self.min[keep],
            self.max[keep],
            self.last[keep],
        )

    def cut(self, i: int, j: int) -> Rows:
        """Rows ``i`` to ``j`` (views, not copies)."""
        return Rows(
            self.ts[i:j],
            self.count[i:j],
            self.sum[i:j],
            self.min[i:j],
            self.max[i:j],
            self.last[i:j],
        )


def empty(cols: int) -> Rows:
    z = np.zeros((0, cols), dtype=np.float64)
    return Rows(np.zeros(0, dtype=np.int64), z, z, z, z, z)


def from_raw(ts: I64, vals: F64) -> Rows:
    """Raw samples (rows x cols, NaN absent) as rows of count 1."""
    present = ~np.isnan(vals)
    return Rows(
        ts.astype(np.int64),
        present.astype(np.float64),
        np.where(present, vals, 0.0),
        vals,
        vals,
        vals,
    )


def from_stats(ts: I64, count: F64, total: F64, lo: F64, hi: F64) -> Rows:
    """Stored rollup matrices (count NaN = absent) as rows; ``last`` is the bucket's mean."""
    c = np.nan_to_num(count, nan=0.0)
    s = np.where(c > 0, total, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(c > 0, s / np.where(c > 0, c, 1.0), np.nan)
    return Rows(ts.astype(np.int64), c, s, lo, hi, mean)


def concat(parts: list[Rows], cols: int) -> Rows:
    parts = [p for p in parts if len(p.ts)]
    if not parts:
        return empty(cols)
    if len(parts) == 1:
        return parts[0]
    return Rows(
        np.concatenate([p.ts for p in parts]),
        np.concatenate([p.count for p in parts]),
        np.concatenate([p.sum for p in parts]),
        np.concatenate([p.min for p in parts]),
        np.concatenate([p.max for p in parts]),
        np.concatenate([p.last for p in parts]),
    )


_F64_MAX = float(np.finfo(np.float64).max)


def bucket(rows: Rows, step_ms: int) -> Rows:
    """Aggregate rows into buckets ``[k*step, (k+1)*step)`` labelled by their start. Rows need
    not be sorted; rows of the same bucket merge (count and sum add, min/max combine, the last
    present value by timestamp wins)."""
    if len(rows.ts) == 0:
        return rows
    ts = rows.ts
    if (ts[1:] > ts[:-1]).all() and not (ts % step_ms).any():
        # one row per bucket, in order (a history at its tier's own step: 1,440 stored
        # 1-minute rows for 24 h): what the reductions below give, without them (0.17 ms)
        with np.errstate(invalid="ignore"):
            present = rows.count > 0
        return Rows(
            ts,
            rows.count,
            _finite(rows.sum),
            np.where(present, rows.min, np.nan),
            np.where(present, rows.max, np.nan),
            rows.last,
        )
    # Rows already in time order (a history's stored rows, then the head's newer ones; a
    # window's samples) are reduced where they are: a stable sort would give them back in
    # the same order, and copying the five matrices into it was a fifth of this function.
    # np.r_ and np.clip's wrapper were another fifth (a 30-day history buckets ~10 rows of
    # its last hour twice a read: 27 us a call before, the same numbers).
    if (ts[1:] >= ts[:-1]).all():
        count, total, lo, hi, last_src = rows.count, rows.sum, rows.min, rows.max, rows.last
    else:
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        count, total = rows.count[order], rows.sum[order]
        lo, hi, last_src = rows.min[order], rows.max[order], rows.last[order]
    keys = ts - ts % step_ms
    new = np.empty(len(keys), dtype=np.bool_)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    count = np.add.reduceat(count, starts, axis=0)
    with np.errstate(over="ignore"):
        total = np.add.reduceat(total, starts, axis=0)
    # a sum of values near the float maximum overflows: keep it finite (so that adding partial
    # sums later never gives inf - inf = NaN); the average read from it is kept within
    # [min, max] (reads._points)
    _finite(total, out=total)
    with np.errstate(invalid="ignore"):
        lo = np.fmin.reduceat(lo, starts, axis=0)
        hi = np.fmax.reduceat(hi, starts, axis=0)
    present = ~np.isnan(last_src)
    idx = np.where(present, np.arange(len(ts))[:, None], -1)
    last_idx = np.maximum.reduceat(idx, starts, axis=0)
    cols = np.arange(rows.cols)[None, :]
    last = np.where(last_idx >= 0, last_src[np.maximum(last_idx, 0), cols], np.nan)
    absent = ~(count > 0)  # (a NaN count too, as np.where(count > 0, ...) had it)
    lo[absent] = np.nan
    hi[absent] = np.nan
    return Rows(keys[starts], count, total, lo, hi, last)


def _finite(a: F64, out: F64 | None = None) -> F64:
    """``np.clip(a, -max, max, out=out)``: the same numbers (NaN stays NaN), without
    ``np.clip``'s Python wrapper (a few microseconds a call, several calls a history read)."""
    return np.minimum(np.maximum(a, -_F64_MAX, out=out), _F64_MAX, out=out)


def to_stats(rows: Rows) -> list[F64]:
    """The four matrices stored in a rollup block: count (NaN when 0), sum, min, max."""
    present = rows.count > 0
    return [
        np.where(present, rows.count, np.nan),
        np.where(present, rows.sum, np.nan),
        np.where(present, rows.min, np.nan),
        np.where(present, rows.max, np.nan),
    ]
