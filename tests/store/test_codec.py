"""The block codec reads back what it wrote: every matrix, integer and double columns,
first- and second-order deltas, absent cells, several column chunks, any subset of columns."""

from __future__ import annotations

import numpy as np
import pytest

from hostpulse.store import codec
from hostpulse.store.codec import CHUNK, FLOAT


def _block(rows: int, cols: int, mats: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = rng.choice(np.array([0, 2, 3, FLOAT], dtype=np.uint8), cols)
    out = []
    for m in range(mats):
        base = np.cumsum(rng.integers(-50, 50, (rows, cols)), axis=0).astype(np.float64)
        trend = np.arange(rows)[:, None] * rng.integers(0, 7, cols)[None, :]  # order-2 friendly
        vals = base + trend * (m + 1)
        is_int = scales != FLOAT
        vals[:, is_int] /= 10.0 ** scales[is_int]
        vals[:, ~is_int] = rng.standard_normal((rows, int((~is_int).sum()))) * 1e6
        out.append(vals)
    absent = rng.random((rows, cols)) < 0.2
    absent[:, 0] = True  # one column with no sample at all
    for v in out:
        v[absent] = np.nan
    return out, scales


@pytest.mark.parametrize(("rows", "cols", "mats"), [(1, 1, 1), (37, 5, 1), (120, 3 * CHUNK + 5, 4)])
def test_every_cell_reads_back(rows: int, cols: int, mats: int) -> None:
    vals, scales = _block(rows, cols, mats, seed=rows + cols)
    ts = np.arange(rows, dtype=np.int64) * 5000 + 1_700_000_000_000
    ids = np.arange(cols, dtype=np.int64) * 3 + 11
    b = codec.decode(codec.encode(ts, ids, vals, scales))
    assert b.ts.tolist() == ts.tolist()
    assert b.ids.tolist() == ids.tolist()
    for m in range(mats):
        np.testing.assert_array_equal(b.matrix(m), vals[m])
        for j in range(cols):
            np.testing.assert_array_equal(b.column(m, j), vals[m][:, j])
    for j in range(cols):  # one column, every matrix at once: what a history of one series reads
        one = b.values(np.array([j], dtype=np.intp))
        assert one.shape == (mats, 1, rows)
        for m in range(mats):
            np.testing.assert_array_equal(one[m, 0], vals[m][:, j])
    # any subset of columns, out of order and across chunks, all matrices at once
    pick = np.array(sorted(range(cols), key=lambda j: (j * 7) % cols)[: max(1, cols // 2)])
    got = b.values(pick.astype(np.intp))
    assert got.shape == (mats, len(pick), rows)
    for m in range(mats):
        np.testing.assert_array_equal(got[m], vals[m][:, pick].T)


def test_second_order_columns_read_back_one_at_a_time_and_together() -> None:
    """Counters growing at a steady rate are stored as deltas of deltas (order 2): they read
    back exactly, one column with every matrix (a history's read of one series) or several."""
    rows, cols, mats = 50, CHUNK + 3, 4
    rng = np.random.default_rng(5)
    steady = np.arange(rows, dtype=np.float64)[:, None] * rng.integers(100, 900, cols)[None, :]
    vals = [steady * (m + 1) + 1000 * m for m in range(mats)]
    vals[1][:, 2] = rng.integers(0, 10**6, rows)  # not steady: first order
    scales = np.zeros(cols, dtype=np.uint8)
    ts = np.arange(rows, dtype=np.int64) * 5000 + 1_700_000_000_000
    b = codec.decode(codec.encode(ts, np.arange(cols, dtype=np.int64), vals, scales))
    assert (b.orders == 2).sum() > cols and (b.orders == 1).any()
    for j in range(cols):
        one = b.values(np.array([j], dtype=np.intp))
        for m in range(mats):
            np.testing.assert_array_equal(one[m, 0], vals[m][:, j])
    every = b.values(np.arange(cols, dtype=np.intp))
    for m in range(mats):
        np.testing.assert_array_equal(every[m], vals[m].T)
