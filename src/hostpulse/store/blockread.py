"""Reading the stored blocks of a history: what a query costs besides the head.

One read transaction per query on a SQLite connection of its own, in a worker thread (a
thread-local connection per worker; two workers), instead of the async engine's several
thread hops. Small blocks come back with the SELECT; a large one (a day of 1-minute rollups of
~160 series is 0.5-1.1 MB) is read in part through SQLite's incremental blob I/O: the header,
the column index and only the column chunks of the wanted series (``codec.CHUNK`` columns
each), about a tenth of the block for one series. Measured on a 30-host store: a 24 h read
of one series took 1.8 ms of CPU in the SELECT of its two 1-minute blocks, 0.1 ms this way.
The database uses auto_vacuum, so SQLite finds the pages of a blob's tail without reading the
pages before it.

Decoded series of recent reads are kept in a bounded cache (``CACHE_BYTES`` of numpy arrays,
least recently used out first): a board refreshing its widgets, or the 12 partial blocks of
today before they are merged, are not decoded again. An entry is keyed by the block's row id
*and* its size, start, end and sample count, so a block that replaces others (a merge, which
may reuse a deleted row's id) is never answered from an entry of the blocks it replaced.

Above that, the rows of a history whose range reaches the present are kept whole
(``SealedCache``): for one host, tier and set of series, the rows of every stored block from
the range's start on, with each block's group, start and end. Stored blocks never change;
what changes is which blocks there are (compaction adds them, a merge replaces partial ones,
retention deletes old ones). The store is the only writer of its blocks (one server per data
directory, ``server/datalock.py``; a restore goes into an empty directory before the server
starts), and each of those changes notes, after its commit, which hosts and tiers it touched
(``BlockVersions``). An entry is used only while nothing changed the blocks of its host and
tier since the read that filled it began, for a range starting at or after the entry's start:
the blocks that range would select are picked from the entry with the same conditions as the
SELECT, so the rows are those a read would return. A dashboard's repeated "last 24 hours" then
costs no SQLite read, no decoding and no hop to a worker thread, only the head's part (newer
than the watermark) and the step aggregation. ``VictoriaMetrics`` answers repeated range
queries the same way from its rollup result cache.

The entries were first keyed by SQLite's ``PRAGMA data_version``, which moves with every
commit to the file: the server's alert state, sessions, last-seen times and registrations
share it, so while a server ran, entries were dropped every few seconds and reads went back
to the blocks (issue 17: 24 h / 30 d P95 of 1.6-3.8 ms, not reproducible).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from hostpulse.store import codec, rollup
from hostpulse.store.blocks import cells_of, positions, rows_of_cells

I64 = npt.NDArray[np.int64]

#: Blocks up to this size are read whole with the SELECT (one round trip, no blob handle).
WHOLE_BYTES = 64 * 1024
#: Page cache of each reading connection (SQLite's ``cache_size``, KiB): the operating
#: system's cache holds the file; this only keeps the pages of recent reads close.
CACHE_KIB = 4096
WORKERS = 2
#: Bytes of decoded series kept (``BlockCache``): a day of one series' 1-minute rollups is
#: 57 KB, so 32 MiB holds ~580 of them (a 12-widget board of 10 hosts over 24 h needs ~200).
CACHE_BYTES = 32 * 2**20
#: Bytes of whole histories kept (``SealedCache``): 30 days of one series' 1-hour rows are
#: 35 KB, 24 hours of its 1-minute rows 69 KB.
SEALED_BYTES = 32 * 2**20
#: The range end of a read that keeps its rows (``BlockReader.sealed_rows``): past every block.
FOREVER = 2**62

F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]
Cells = tuple[I64, F64]
CacheKey = tuple[int, int, int, int, int, bytes]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BlockCache:
    """Decoded cells of (block, series) pairs, at most ``limit`` bytes, least recently used
    out first; shared by the reading threads."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.bytes = 0
        self._items: OrderedDict[CacheKey, Cells] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> Cells | None:
        with self._lock:
            got = self._items.get(key)
            if got is not None:
                self._items.move_to_end(key)
            return got

    def put(self, key: CacheKey, cells: Cells) -> None:
        size = cells[0].nbytes + cells[1].nbytes
        if size > self.limit:
            return
        for arr in cells:  # shared by every read that hits: nobody may change them
            arr.flags.writeable = False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[0].nbytes + old[1].nbytes
            self._items[key] = cells
            self.bytes += size
            while self.bytes > self.limit:
                _, (ts, c) = self._items.popitem(last=False)
                self.bytes -= ts.nbytes + c.nbytes


class BlockVersions:
    """When the stored blocks of each host and tier last changed, on a counter that moves
    with every change: what the kept rows (``Sealed``) are checked against. Noted by the
    compactor after each commit that adds or deletes blocks; used on the event loop only."""

    _made = itertools.count(1)

    def __init__(self) -> None:
        self.token = next(self._made)
        """Tells this store's counters from another's (in one process, tests open many)."""
        self.now = 0
        self._host: dict[tuple[int, int], int] = {}
        self._kind: dict[int, int] = {}

    def changed(self, keys: Iterable[tuple[int, int]]) -> None:
        """The blocks of these (host key, kind) pairs changed (a commit that is done)."""
        self.now += 1
        for key in keys:
            self._host[key] = self.now

    def changed_kind(self, kind: int) -> None:
        """The blocks of ``kind`` changed for any number of hosts (retention)."""
        self.now += 1
        self._kind[kind] = self.now

    def since(self, host_key: int, kind: int) -> int:
        """The counter at the last change of the blocks of ``host_key`` and ``kind``."""
        return max(self._host.get((host_key, kind), 0), self._kind.get(kind, 0))


#: Numbers for kept rows (``Selected.source``): unique for the life of the process.
next_source = itertools.count(1).__next__


@dataclass(frozen=True, slots=True)
class Selected:
    """Rows, which of them a read keeps (``keep``, None: all of them) and whether their
    timestamps never go down (``ordered``: a time range of them is found by bisection).
    ``source``: when the rows are kept ones that never change (a ``Sealed`` entry's, a host's
    kept head rows), a number no other rows are ever given (``next_source``); None for rows
    made for one read. (Which of them a read takes is told by ``keep`` and the range.)"""

    rows: rollup.Rows
    keep: npt.NDArray[np.bool_] | None = None
    ordered: bool = False
    source: int | None = None

    def taken(self) -> rollup.Rows:
        return self.rows if self.keep is None else self.rows.take(self.keep)


SealedKey = tuple[int, int, bytes]
"""(host key, kind, the wanted series' ids as bytes)."""


@dataclass(slots=True)
class Sealed:
    """The rows of every stored block of one host, kind and set of series that a read from
    ``lo`` on selects, read after ``BlockVersions.now`` was ``version``."""

    version: int
    lo: int
    span: int
    group: I64
    start: I64
    end: I64
    row_block: IntP
    """The block (index into ``group``, ``start``, ``end``) of each row."""
    rows: rollup.Rows
    ordered: bool = False
    """The rows' timestamps never go down (blocks in order, none overlapping another)."""
    source: int = field(default_factory=next_source)
    bounds: tuple[int, int, int, int] | None = field(init=False)
    """(least group, greatest group, earliest end, latest start) of the blocks; None: none."""

    def __post_init__(self) -> None:
        g = self.group
        if len(g):
            self.bounds = (int(g.min()), int(g.max()), int(self.end.min()), int(self.start.max()))
        else:
            self.bounds = None

    @property
    def nbytes(self) -> int:
        r = self.rows
        arrays = (self.group, self.start, self.end, self.row_block, r.ts, r.count, r.sum)
        return sum(a.nbytes for a in (*arrays, r.min, r.max, r.last))

    def covers(self, changed: int, lo: int, span: int) -> bool:
        """Whether a read of ``lo`` on is in the entry, the blocks having last changed at
        ``changed`` (``BlockVersions.since``)."""
        return changed <= self.version and lo >= self.lo and span == self.span

    def select(self, lo: int, end: int) -> rollup.Rows:
        """The rows of the blocks a read of ``[lo, end]`` selects (``_SELECT``'s conditions),
        in the same order; ``lo`` at or after ``self.lo``."""
        return self.selected(lo, end).taken()

    def selected(self, lo: int, end: int) -> Selected:
        """``select`` before it is taken: all the rows, and which of them are those of the
        blocks a read of ``[lo, end]`` selects (None: all). A caller that narrows the rows
        further takes them once, with both conditions (a 24 h read after a kept one keeps a
        few of its 1,440 rows: two takes of them were a fifth of its CPU)."""
        span = self.span
        b = self.bounds
        if b is None or (b[0] > lo - span and b[1] <= end and b[2] > lo and b[3] <= end):
            return Selected(self.rows, None, self.ordered, self.source)  # every block
        sel = (self.group > lo - span) & (self.group <= end) & (self.end > lo) & (self.start <= end)
        if sel.all():
            return Selected(self.rows, None, self.ordered, self.source)
        return Selected(self.rows, sel[self.row_block], self.ordered, self.source)


class KeptBytes(Generic[K, V]):
    """Entries of at most ``limit`` bytes together (``size`` of each, plus ``ENTRY_BYTES``
    for its key and objects: entries that hold little or nothing are bounded in number too),
    least recently used out first; used on the event loop only. What ``SealedCache``,
    ``reads.KeptPoints`` and the API's ``PointsJsonCache`` keep."""

    ENTRY_BYTES = 512

    def __init__(self, limit: int, size: Callable[[V], int]) -> None:
        self.limit = limit
        self.bytes = 0
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        got = self._items.get(key)
        if got is not None:
            self._items.move_to_end(key)
        return got

    def put(self, key: K, entry: V) -> None:
        """Keep ``entry`` under ``key`` (instead of what was), unless it alone is too large."""
        self.drop(key)
        size = self._size(entry) + self.ENTRY_BYTES
        if size > self.limit:
            return
        self._items[key] = entry
        self.bytes += size
        while self.bytes > self.limit:
            _, gone = self._items.popitem(last=False)
            self.bytes -= self._size(gone) + self.ENTRY_BYTES

    def drop(self, key: K) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= self._size(old) + self.ENTRY_BYTES

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


class SealedCache(KeptBytes[SealedKey, Sealed]):
    """``Sealed`` entries, at most ``limit`` bytes, least recently used out first; used on the
    event loop only."""

    def __init__(self, limit: int = SEALED_BYTES) -> None:
        super().__init__(limit, _sealed_bytes)


def _sealed_bytes(entry: Sealed) -> int:
    return entry.nbytes


_SELECT = (
    "SELECT id, length(data), group_ms, start_ms, end_ms, samples,"
    " CASE WHEN length(data) <= ? THEN data END FROM ts_blocks"
    " WHERE host_key = ? AND kind = ? AND group_ms > ? AND group_ms <= ?"
    " AND end_ms > ? AND start_ms <= ? ORDER BY group_ms"
)


class BlockReader:
    """Rows of the stored blocks of one host, kind and time range, for a set of series."""

    def __init__(
        self,
        path: Path,
        workers: int = WORKERS,
        cache: BlockCache | None = None,
        sealed: SealedCache | None = None,
        versions: BlockVersions | None = None,
    ) -> None:
        self.path = path
        self.versions = versions if versions is not None else BlockVersions()
        self.cache = cache if cache is not None else BlockCache()
        self.sealed = sealed if sealed is not None else SealedCache()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="hostpulse-blocks")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA query_only=1")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def rows(
        self, host_key: int, kind: int, start: int, end: int, span: int, wanted: I64
    ) -> rollup.Rows:
        """The rows (not merged) of the blocks of ``host_key`` and ``kind`` that overlap
        ``[start, end]``; ``span``: how far before its group a block may start."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._rows, host_key, kind, start, end, span, wanted
        )

    def cached_rows(
        self, host_key: int, kind: int, start: int, end: int, span: int, wanted: I64
    ) -> Selected | None:
        """What ``rows`` returns (``Sealed.selected``: not yet taken), from ``sealed`` without
        touching a block, when a read of a range starting at or before ``start`` was kept and
        the blocks of ``host_key`` and ``kind`` have not changed since; else None. Call on the
        event loop."""
        entry = self.sealed.get((host_key, kind, wanted.tobytes()))
        if entry is None or not entry.covers(self.versions.since(host_key, kind), start, span):
            return None
        return entry.selected(start, end)

    async def sealed_rows(
        self, host_key: int, kind: int, start: int, end: int, span: int, wanted: I64
    ) -> Selected:
        """What ``rows`` returns (not yet taken, as ``cached_rows``); reads every block from
        ``start`` on (not only to ``end``: for a range that reaches the present there is
        nothing after it) and keeps them in ``sealed`` for the next reads of this host, kind
        and series (``cached_rows``)."""
        # before the read's snapshot: a change committed after it is noted later
        version = self.versions.now
        loop = asyncio.get_running_loop()
        parts, meta = await loop.run_in_executor(
            self._pool, self._read, host_key, kind, start, FOREVER, span, wanted
        )
        counts = np.array([len(ts) for ts, _ in parts], dtype=np.intp)
        rows = rows_of_cells(kind, parts, len(wanted))
        for a in (rows.ts, rows.count, rows.sum, rows.min, rows.max, rows.last):
            a.flags.writeable = False  # shared by the reads that use the entry
        entry = Sealed(
            version,
            start,
            span,
            np.array([m[0] for m in meta], dtype=np.int64),
            np.array([m[1] for m in meta], dtype=np.int64),
            np.array([m[2] for m in meta], dtype=np.int64),
            np.repeat(np.arange(len(parts), dtype=np.intp), counts),
            rows,
            bool((rows.ts[1:] >= rows.ts[:-1]).all()),
        )
        self.sealed.put((host_key, kind, wanted.tobytes()), entry)
        return entry.selected(start, end)

    def _rows(
        self, host_key: int, kind: int, start: int, end: int, span: int, wanted: I64
    ) -> rollup.Rows:
        parts, _ = self._read(host_key, kind, start, end, span, wanted)
        return rows_of_cells(kind, parts, len(wanted))

    def _read(
        self, host_key: int, kind: int, start: int, end: int, span: int, wanted: I64
    ) -> tuple[list[Cells], list[tuple[int, int, int]]]:
        """Each selected block's cells and its (group, start, end), in the SELECT's order."""
        conn = self._conn()
        parts: list[Cells] = []
        meta: list[tuple[int, int, int]] = []
        series = wanted.astype(np.int64).tobytes()
        conn.execute("BEGIN")  # one snapshot for the SELECT and the blob reads
        try:
            hits = conn.execute(
                _SELECT, (WHOLE_BYTES, host_key, kind, start - span, end, start, end)
            ).fetchall()
            for rowid, size, group, first, last, samples, data in hits:
                key = (rowid, size, first, last, samples, series)
                cells = self.cache.get(key)
                if cells is None:
                    block = self._block(conn, rowid, size, data, wanted)
                    cells = (block.ts, cells_of(block, wanted))
                    self.cache.put(key, cells)
                parts.append(cells)
                meta.append((group, first, last))
        finally:
            conn.execute("COMMIT")
        return parts, meta

    @staticmethod
    def _block(
        conn: sqlite3.Connection, rowid: int, size: int, data: bytes | None, wanted: I64
    ) -> codec.Block:
        """The block, whole (``data``) or the part of it that holds ``wanted``."""
        if data is not None:
            return codec.decode(data)
        with conn.blobopen("ts_blocks", "data", rowid, readonly=True) as blob:

            def read(lo: int, hi: int) -> bytes:
                blob.seek(lo)
                return blob.read(hi - lo)

            block = codec.Block(read, size)
            block.load(np.array([j for j in positions(block, wanted) if j >= 0], np.intp))
        return block

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.sealed.clear()
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
