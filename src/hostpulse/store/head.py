"""The in-memory head: the newest, not yet compacted samples of each host, columnar.

Per host there is one growable matrix per block window (rows = snapshots, columns = the host's
series, NaN = absent), so storing a snapshot is one vectorised row write, whatever the number
of series. The mapping from a batch's series table to columns is cached by a digest of the
table, since an agent sends the same table every time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hostpulse.protocol import Snapshot
from hostpulse.store.types import HostRecord

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]
BoolA = npt.NDArray[np.bool_]

_MIN = np.iinfo(np.int64).min

Cols = IntP | slice
"""The head columns of a snapshot's values: one per value, or a slice when they are the
columns 0..n-1 in order (numpy then writes a view instead of scattering)."""

Key = tuple[str, tuple[tuple[str, str], ...]]
"""A series of a host: (metric, labels)."""


_WRITES = itertools.count(1)
"""Numbers each change of any window's samples (``WindowBuf.version``), never one twice."""


class WindowBuf:
    """The samples of one host in one block window."""

    __slots__ = ("n", "old", "row_of", "start", "ts", "vals", "version")

    def __init__(self, start: int, cols: int) -> None:
        self.start = start
        self.n = 0
        self.version = next(_WRITES)
        """Moves on with every change of the window's samples (``put``, ``mark_stored``): a
        read of the head keeps what it derived from the window while this stays
        (``reads.Reader._head_rows``). Unique among all windows of the process."""
        # one row to start with: a window with a single snapshot (a back-filled or stray one)
        # costs one row of the host's columns, not eight; rows double as they fill
        self.ts: I64 = np.empty(1, dtype=np.int64)
        self.vals: F64 = np.full((1, max(cols, 4)), np.nan)
        self.row_of: dict[int, int] = {}
        self.old: BoolA | None = None  # cells already in stored blocks (late windows only)

    def ensure_cols(self, cols: int) -> None:
        have = self.vals.shape[1]
        if cols > have:
            wider = np.full((self.vals.shape[0], max(cols, have * 2)), np.nan)
            wider[:, :have] = self.vals
            self.vals = wider
            if self.old is not None:
                old = np.zeros(wider.shape, dtype=np.bool_)
                old[:, :have] = self.old
                self.old = old

    def _row(self, ts: int) -> int:
        row = self.row_of.get(ts)
        if row is not None:
            return row
        if self.n == len(self.ts):
            cap = self.n * 2
            self.ts = np.resize(self.ts, cap)
            taller = np.full((cap, self.vals.shape[1]), np.nan)
            taller[: self.n] = self.vals[: self.n]
            self.vals = taller
            if self.old is not None:
                old = np.zeros(taller.shape, dtype=np.bool_)
                old[: self.n] = self.old[: self.n]
                self.old = old
        row = self.n
        self.ts[row] = ts
        self.row_of[ts] = row
        self.n += 1
        return row

    def put(self, ts: int, cols: Cols, values: F64) -> int:
        """Store the values not yet present; returns how many were new. ``cols``: the column
        of each value, or a slice of the columns in order (a view, not a gather)."""
        fresh = ts not in self.row_of
        row = self._row(ts)
        if fresh:
            self.vals[row, cols] = values
            self.version = next(_WRITES)
            return len(values)
        new = np.isnan(self.vals[row, cols])
        count = int(new.sum())
        if count:
            self.version = next(_WRITES)
            if isinstance(cols, slice):
                self.vals[row, cols][new] = values[new]
            else:
                self.vals[row, cols[new]] = values[new]
        return count

    def mark_stored(self, ts: I64, cols: IntP, vals: F64) -> None:
        """Load samples that are already in stored blocks, so duplicates of them are found."""
        if self.old is None:
            self.old = np.zeros(self.vals.shape, dtype=np.bool_)
        self.version = next(_WRITES)
        for i, t in enumerate(ts.tolist()):
            row = self._row(int(t))
            present = ~np.isnan(vals[i])
            self.vals[row, cols[present]] = vals[i, present]
            assert self.old is not None
            self.old[row, cols[present]] = True

    def new_samples(self) -> tuple[I64, F64]:
        """Timestamps (sorted) and values of the samples not yet stored (NaN elsewhere)."""
        n = self.n
        order = np.argsort(self.ts[:n], kind="stable")
        vals = self.vals[:n][order]
        if self.old is not None:
            vals = np.where(self.old[:n][order], np.nan, vals)
        return self.ts[:n][order], vals

    def count_new(self) -> int:
        n = self.n
        present = ~np.isnan(self.vals[:n])
        if self.old is not None:
            present &= ~self.old[:n]
        return int(present.sum())


@dataclass(slots=True)
class SeriesCol:
    series_id: int
    metric: str
    labels: tuple[tuple[str, str], ...]
    kmax: int
    lossy: bool


@dataclass(slots=True)
class HostHead:
    key: int
    record: HostRecord
    meta_digest: bytes = b""
    columns: list[SeriesCol] = field(default_factory=list)
    col_of: dict[int, int] = field(default_factory=dict)  # series_id -> column
    tables: dict[bytes, IntP] = field(default_factory=dict)  # series-table digest -> columns
    windows: dict[int, WindowBuf] = field(default_factory=dict)
    last_ts: I64 = field(default_factory=lambda: np.full(8, _MIN, dtype=np.int64))
    last_val: F64 = field(default_factory=lambda: np.full(8, np.nan))
    latest_loaded: bool = False
    procs: list[Snapshot] = field(default_factory=list)  # kept, not yet compacted
    proc_ts: set[int] = field(default_factory=set)
    last_proc_ts: int = _MIN
    procs_bytes: int = 0  # serialized size of ``procs``
    reserved: int = 0  # what requests that passed the budget check may still add
    bytes: int = 0  # what the windows and ``procs`` hold (``budget.host_bytes``), as last counted
    _key_index: dict[Key, int] = field(default_factory=dict)

    def key_index(self) -> dict[Key, int]:
        """(metric, labels) -> column."""
        return self._key_index

    def known_keys(self) -> dict[Key, int]:
        return self._key_index

    def add_column(self, col: SeriesCol) -> int:
        self.add_columns({(col.metric, col.labels): col.series_id}, [col])
        return len(self.columns) - 1

    def add_columns(self, ids: dict[Key, int], cols: list[SeriesCol]) -> None:
        """Append ``cols`` (series not yet in the head, in this order); ``ids`` is the same
        series as (metric, labels) -> series id, in the same order."""
        first = len(self.columns)
        self.columns += cols
        stop = len(self.columns)
        where = range(first, stop)
        self.col_of.update(zip(ids.values(), where, strict=True))
        self._key_index.update(zip(ids, where, strict=True))
        have = len(self.last_ts)
        if stop > have:
            cap = max(stop, have * 2)
            self.last_ts = np.concatenate([self.last_ts, np.full(cap - have, _MIN, dtype=np.int64)])
            self.last_val = np.concatenate([self.last_val, np.full(cap - have, np.nan)])

    def window(self, start: int) -> WindowBuf:
        buf = self.windows.get(start)
        if buf is None:
            buf = self.windows[start] = WindowBuf(start, len(self.columns))
        else:
            buf.ensure_cols(len(self.columns))
        return buf

    def note_latest(self, ts: int, cols: Cols, values: F64) -> None:
        newer = self.last_ts[cols] <= ts
        if newer.all():
            self.last_ts[cols] = ts
            self.last_val[cols] = values
        elif isinstance(cols, slice):  # views: assigning through them writes the arrays
            self.last_ts[cols][newer] = ts
            self.last_val[cols][newer] = values[newer]
        else:
            self.last_ts[cols[newer]] = ts
            self.last_val[cols[newer]] = values[newer]

    def keep_processes(self, snap: Snapshot, min_interval_ms: int) -> None:
        """Keep the snapshot's top lists when no kept list is within ``min_interval_ms``."""
        ts = snap.timestamp_ms
        if ts in self.proc_ts:
            return
        if ts >= self.last_proc_ts:
            if ts - self.last_proc_ts < min_interval_ms:
                return
            self.last_proc_ts = ts
        elif any(abs(ts - p.timestamp_ms) < min_interval_ms for p in self.procs):
            return
        kept = Snapshot(timestamp_ms=ts)
        kept.top_cpu.extend(snap.top_cpu)
        kept.top_memory.extend(snap.top_memory)
        self.procs.append(kept)
        self.proc_ts.add(ts)
        self.procs_bytes += kept.ByteSize()
