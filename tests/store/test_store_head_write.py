"""A snapshot in table order is written to the head through slices (views), not gathers and
scatters: the same cells, duplicates and newest values as through column arrays."""

from __future__ import annotations

import numpy as np
import pytest

from hostpulse.store.head import Cols, HostHead, WindowBuf
from hostpulse.store.types import HostRecord


def _head(cols: int) -> HostHead:
    head = HostHead(1, HostRecord(host_id="h", hostname="h"))
    head.last_ts = np.full(cols, np.iinfo(np.int64).min, dtype=np.int64)
    head.last_val = np.full(cols, np.nan)
    return head


@pytest.mark.parametrize("as_slice", [True, False])
def test_slices_write_what_column_arrays_write(as_slice: bool) -> None:
    n = 6
    cols: Cols = slice(0, n) if as_slice else np.arange(n, dtype=np.intp)
    buf = WindowBuf(0, n)
    first = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert buf.put(1000, cols, first) == n
    # again at the same time: only the missing cells are new
    buf.vals[0, [1, 4]] = np.nan
    again = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    assert buf.put(1000, cols, again) == 2
    assert buf.vals[0, :n].tolist() == [1.0, 8.0, 3.0, 4.0, 5.0, 6.0]
    head = _head(n)
    head.note_latest(2000, cols, first)
    head.last_ts[[0, 3]] = 3000  # two series have a newer sample already
    head.note_latest(2500, cols, again)
    assert head.last_ts.tolist() == [3000, 2500, 2500, 3000, 2500, 2500]
    assert head.last_val.tolist() == [1.0, 8.0, 7.0, 4.0, 5.0, 4.0]
