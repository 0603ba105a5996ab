"""Storage resolution of each metric, derived from its catalog unit.

A column is stored as integers at the smallest decimal scale ``10**k`` that reproduces every
value exactly. Units whose instruments are noisier than a fine resolution may round to it
(``LOSSY``): their values come back within half a unit of that resolution. Everything else
(unknown metrics and unit-less counts, load averages, ...) is lossless: when no ``k <= 6``
is exact the column falls back to doubles.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from hostpulse import catalog
from hostpulse.store.codec import FLOAT, INT_LIMIT

#: unit -> decimal places kept (resolution 10**-k); values may be rounded to it.
LOSSY: dict[str, int] = {
    "percent": 3,  # 0.001 percentage points
    "bytes": 0,  # exact bytes
    "bytes_per_second": 2,  # 0.01 B/s
    "per_second": 3,  # 0.001 events/s
    "hertz": 0,  # 1 Hz
    "seconds": 6,  # 1 microsecond
}
LOSSLESS_MAX_K = 6


@functools.lru_cache(maxsize=4096)
def resolution_k(metric: str) -> tuple[int, bool]:
    """``(k, lossy)`` for a metric key: lossy columns may round to ``10**-k``."""
    try:
        unit = catalog.get(metric).unit
    except KeyError:
        return LOSSLESS_MAX_K, False
    if unit in LOSSY:
        return LOSSY[unit], True
    return LOSSLESS_MAX_K, False


def choose_scales(
    vals: npt.NDArray[np.float64], kmax: npt.NDArray[np.int64], lossy: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    """Per column of ``vals`` (rows x cols, NaN absent) the scale code for ``codec.encode``."""
    c = vals.shape[1]
    out = np.full(c, FLOAT, dtype=np.uint8)
    if vals.shape[0] == 0 or c == 0:
        return out
    v = np.where(np.isnan(vals), 0.0, vals)
    absmax = np.abs(v).max(axis=0)
    undecided = np.ones(c, dtype=np.bool_)
    for k in range(int(kmax.max()) + 1):
        # compared as a quotient: absmax * 10**k overflows for values near the float maximum
        cand = undecided & (kmax >= k) & (absmax < INT_LIMIT / 10.0**k)
        if not cand.any():
            continue
        p = 10.0**k
        sub = v[:, cand]
        exact = (np.rint(sub * p) / p == sub).all(axis=0)
        idx = np.flatnonzero(cand)[exact]
        out[idx] = k
        undecided[idx] = False
        if not undecided.any():
            return out
    rounded = undecided & lossy & (absmax < INT_LIMIT / 10.0**kmax)
    out[rounded] = kmax[rounded]
    return out
