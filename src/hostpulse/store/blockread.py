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
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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

F64 = npt.NDArray[np.float64]
Cells = tuple[I64, F64]
CacheKey = tuple[int, int, int, int, int, bytes]


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


_SELECT = (
    "SELECT id, length(data), start_ms, end_ms, samples,"
    " CASE WHEN length(data) <= ? THEN data END FROM ts_blocks"
    " WHERE host_key = ? AND kind = ? AND group_ms > ? AND group_ms <= ?"
    " AND end_ms > ? AND start_ms <= ? ORDER BY group_ms"
)


class BlockReader:
    """Rows of the stored blocks of one host, kind and time range, for a set of series."""

    def __init__(self, path: Path, workers: int = WORKERS, cache: BlockCache | None = None) -> None:
        self.path = path
        self.cache = cache if cache is not None else BlockCache()
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

    def _rows(
        self, host_key: int, kind: int, start: int, end: int, span: int, wanted: I64
    ) -> rollup.Rows:
        conn = self._conn()
        parts: list[Cells] = []
        series = wanted.astype(np.int64).tobytes()
        conn.execute("BEGIN")  # one snapshot for the SELECT and the blob reads
        try:
            hits = conn.execute(
                _SELECT, (WHOLE_BYTES, host_key, kind, start - span, end, start, end)
            ).fetchall()
            for rowid, size, first, last, samples, data in hits:
                key = (rowid, size, first, last, samples, series)
                cells = self.cache.get(key)
                if cells is None:
                    block = self._block(conn, rowid, size, data, wanted)
                    cells = (block.ts, cells_of(block, wanted))
                    self.cache.put(key, cells)
                parts.append(cells)
        finally:
            conn.execute("COMMIT")
        return rows_of_cells(kind, parts, len(wanted))

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
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
