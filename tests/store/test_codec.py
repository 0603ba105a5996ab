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
    # any subset of columns, out of order and across chunks, all matrices at once
    pick = np.array(sorted(range(cols), key=lambda j: (j * 7) % cols)[: max(1, cols // 2)])
    got = b.values(pick.astype(np.intp))
    assert got.shape == (mats, len(pick), rows)
    for m in range(mats):
        np.testing.assert_array_equal(got[m], vals[m][:, pick].T)
