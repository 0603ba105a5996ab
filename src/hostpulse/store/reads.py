"""Queries of the SQLite store: hosts, series, latest values, history, process lists.

History merges three sources for the chosen tier: stored blocks, windows being compacted, and
the head (raw samples, aggregated on the fly to the tier's resolution)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from hostpulse.protocol import Process, Snapshot
from hostpulse.store import codec, rollup
from hostpulse.store.blockread import BlockReader, KeptBytes, Selected, next_source
from hostpulse.store.blocks import DAY_MS, decode_processes
from hostpulse.store.exceptions import BadCursorError, StoreClosedError
from hostpulse.store.schema import Kind, blocks
from hostpulse.store.types import (
    Agg,
    HostRecord,
    LatestValue,
    PointArrays,
    ProcessRow,
    ProcessSnapshot,
    RangeResult,
    Retention,
    SeriesInfo,
    SeriesPoints,
    StablePoints,
    Tier,
)

if TYPE_CHECKING:
    from hostpulse.store.head import HostHead, SeriesCol, WindowBuf
    from hostpulse.store.state import StoreState

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]

RAW_MAX_SPAN_MS = 6 * 3_600_000
MINUTE_MAX_SPAN_MS = 7 * 86_400_000
_TIER_KIND = {Tier.RAW: Kind.RAW, Tier.MINUTE: Kind.MINUTE, Tier.HOUR: Kind.HOUR}
_TIER_STEP = {Tier.RAW: 0, Tier.MINUTE: rollup.MINUTE_MS, Tier.HOUR: rollup.HOUR_MS}
_CURSOR_PREFIX = "t"
#: Column lookups of (host, metric, labels) kept (``Reader._columns``); all dropped when full.
COLUMN_LOOKUPS = 65_536
_Lookup = tuple["HostHead", int, list[tuple[int, "SeriesCol"]]]


#: Bytes of kept points (``KeptPoints``): 24 h of one series at a 60 s step are 58 KB.
KEPT_POINTS_BYTES = 32 * 2**20


#: Bytes of kept head rows (``Reader._head_rows``): a host's head (an hour of 5 s samples) of
#: one series as 1-minute rows is 3 KB, as raw rows 35 KB.
HEAD_ROWS_BYTES = 8 * 2**20


#: Bytes of kept answers (``Reader.query_range``'s memo) with the API's JSON of them: 30 days
#: at a 1 h step are ~98 KB, 24 h at 60 s ~196 KB.
ANSWER_BYTES = 16 * 2**20


@dataclass(slots=True)
class _HeadKept:
    windows: tuple[tuple[int, int, bool, int], ...]
    """(version, rows, loaded again, columns) of each window the rows were made of."""
    rows: rollup.Rows
    source: int = field(default_factory=next_source)


def _head_bytes(entry: _HeadKept) -> int:
    return entry.rows.ts.nbytes + 5 * entry.rows.count.nbytes


@dataclass(slots=True)
class _Kept:
    first: int
    sealed: int
    points: list[PointArrays]
    source: int = field(default_factory=next_source)


@dataclass(slots=True)
class _Answer:
    """The points of each series of a history, its ``next_cursor``, and the bytes of the
    row masks in its key."""

    series: list[SeriesPoints]
    next_cursor: str | None
    key_bytes: int


def _answer_bytes(entry: _Answer) -> int:
    # The key (a tuple per series, the masks), the entry's objects, and per series its five
    # arrays' headers and the API's JSON of it (``query_service._ENCODED``), measured: ~4 KB
    # for an answer with no points; then five 8-byte numbers a point and its JSON (~90
    # bytes, ``{"ts_ms":...,"value":...,"min":...,"max":...,"count":...}``).
    points = sum(len(s.arrays) for s in entry.series if s.arrays is not None)
    return 2048 + 2048 * len(entry.series) + 136 * points + entry.key_bytes


class KeptPoints:
    """The points of a history's buckets that come from stored blocks alone, from the range's
    first bucket to the first one that may hold head samples, per set of ``StablePoints``
    keys (the blocks' version, step, aggregation and series): a repeated read (a dashboard's
    "last 24 hours", moving on with the clock) aggregates only the buckets from there on, not
    the 1,440 (24 h at 60 s) it answers. At most ``limit`` bytes, least recently used out
    first; used on the event loop only."""

    def __init__(self, limit: int = KEPT_POINTS_BYTES) -> None:
        self.kept: KeptBytes[tuple[Hashable, ...], _Kept] = KeptBytes(limit, _kept_bytes)

    def __len__(self) -> int:
        return len(self.kept)

    def get(self, keys: list[Hashable], first: int) -> _Kept | None:
        """The kept buckets (``sealed``: their end; ``points`` of each series) when they start
        at or before ``first``; else None."""
        got = self.kept.get(tuple(keys))
        if got is None or got.first > first:
            return None
        return got

    def put(self, keys: list[Hashable], first: int, sealed: int, points: list[PointArrays]) -> None:
        """Keep the buckets ``[first, sealed)`` of ``points``."""
        if sealed <= first:
            self.kept.drop(tuple(keys))
            return
        cut = []
        for p in points:
            k = int(np.searchsorted(p.ts_ms, sealed))
            cut.append(PointArrays(p.ts_ms[:k], p.value[:k], p.min[:k], p.max[:k], p.count[:k]))
        self.kept.put(tuple(keys), _Kept(first, sealed, cut))


def _kept_bytes(entry: _Kept) -> int:
    return 40 * sum(len(p) for p in entry.points)  # five 8-byte numbers a point


def pick_tier(
    start_ms: int, end_ms: int, step_ms: int | None, now_ms: int, retention: Retention
) -> Tier:
    """Raw up to 6 h (or a step under a minute), 1-minute up to 7 days (or a step under an
    hour), else 1-hour; coarser when the finer tier no longer holds the range's start."""
    span = end_ms - start_ms
    if step_ms is not None:
        tier = Tier.RAW if step_ms < 60_000 else Tier.MINUTE if step_ms < 3_600_000 else Tier.HOUR
    else:
        tier = (
            Tier.RAW
            if span <= RAW_MAX_SPAN_MS
            else Tier.MINUTE
            if span <= MINUTE_MAX_SPAN_MS
            else Tier.HOUR
        )
    if tier is Tier.RAW and start_ms < now_ms - retention.raw * 1000:
        tier = Tier.MINUTE
    if tier is Tier.MINUTE and start_ms < now_ms - retention.minute * 1000:
        tier = Tier.HOUR
    return tier


def _match(col: SeriesCol, metric: str | None, labels: dict[str, str] | None) -> bool:
    if metric is not None and col.metric != metric:
        return False
    if labels:
        have = dict(col.labels)
        return all(have.get(k) == v for k, v in labels.items())
    return True


def _proc_row(p: Process) -> ProcessRow:
    return ProcessRow(
        p.pid,
        p.name,
        p.user,
        p.cpu_percent,
        p.mem_percent,
        p.rss_bytes,
        p.threads,
        p.status,
        p.cmdline,
    )


def _proc_snapshot(s: Snapshot) -> ProcessSnapshot:
    return ProcessSnapshot(
        s.timestamp_ms, [_proc_row(p) for p in s.top_cpu], [_proc_row(p) for p in s.top_memory]
    )


class Reader:
    """Answers the ``Store`` queries from the head, the windows being compacted and the
    stored blocks; changes nothing but a head's lazily loaded latest values."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._blocks: BlockReader | None = None
        self._cols: dict[tuple[int, str, tuple[tuple[str, str], ...]], _Lookup] = {}
        self._kept = KeptPoints()
        self._answers: KeptBytes[Hashable, _Answer] = KeptBytes(ANSWER_BYTES, _answer_bytes)
        self._head_kept: KeptBytes[Hashable, _HeadKept] = KeptBytes(HEAD_ROWS_BYTES, _head_bytes)

    def _block_reader(self) -> BlockReader:
        if self._blocks is None:
            database = self.state.engine.url.database
            if not database:
                raise StoreClosedError("the store's database has no file")
            self._blocks = BlockReader(Path(database), versions=self.state.block_versions)
        return self._blocks

    def close(self) -> None:
        """Close the block reader's connections and threads (opened again when needed)."""
        if self._blocks is not None:
            self._blocks.close()
            self._blocks = None

    async def hosts(self) -> list[HostRecord]:
        return [h.record for h in sorted(self.state.heads.values(), key=lambda h: h.record.host_id)]

    async def host(self, host_id: str) -> HostRecord | None:
        head = self.state.heads.get(host_id)
        return head.record if head else None

    async def series(
        self, host_id: str, metric: str | None = None, labels: dict[str, str] | None = None
    ) -> list[SeriesInfo]:
        head = self.state.heads.get(host_id)
        if head is None:
            return []
        return [
            SeriesInfo(c.series_id, host_id, c.metric, c.labels)
            for c in head.columns
            if _match(c, metric, labels)
        ]

    async def latest(self, host_id: str, metrics: list[str] | None = None) -> list[LatestValue]:
        head = self.state.heads.get(host_id)
        if head is None:
            return []
        if not head.latest_loaded:
            await self._load_latest(head)
        wanted = set(metrics) if metrics else None
        out: list[LatestValue] = []
        for j, c in enumerate(head.columns):
            if wanted is not None and c.metric not in wanted:
                continue
            if np.isnan(head.last_val[j]):
                continue
            out.append(
                LatestValue(c.metric, c.labels, int(head.last_ts[j]), float(head.last_val[j]))
            )
        return out

    async def _load_latest(self, head: HostHead) -> None:
        """After a restart: the newest stored value of every series the head has not seen."""
        async with self.state.engine.connect() as conn:
            rows = await conn.execute(
                select(blocks.c.data)
                .where(blocks.c.host_key == head.key, blocks.c.kind == Kind.RAW)
                .order_by(blocks.c.group_ms.desc())
                .limit(3)
            )
            datas = [r[0] for r in rows]
        for data in datas:
            b = codec.decode(data)
            for j, sid in enumerate(b.ids.tolist()):
                col = head.col_of.get(sid)
                if col is None:
                    continue
                vals = b.column(0, j)
                present = np.flatnonzero(~np.isnan(vals))
                if len(present):
                    i = int(present[-1])
                    cols = np.array([col], dtype=np.intp)
                    head.note_latest(int(b.ts[i]), cols, vals[i : i + 1])
        head.latest_loaded = True

    async def _blobs(self, key: int, kind: Kind, start: int, end: int) -> list[bytes]:
        span = DAY_MS if kind in (Kind.MINUTE, Kind.HOUR) else self.state.block_ms
        async with self.state.engine.connect() as conn:
            rows = await conn.execute(
                select(blocks.c.data)
                .where(
                    blocks.c.host_key == key,
                    blocks.c.kind == kind,
                    blocks.c.group_ms > start - span,
                    blocks.c.group_ms <= end,
                    blocks.c.end_ms > start,
                    blocks.c.start_ms <= end,
                )
                .order_by(blocks.c.group_ms)
            )
            return [r[0] for r in rows]

    async def query_range(
        self,
        host_id: str,
        metric: str,
        start_ms: int,
        end_ms: int,
        *,
        labels: dict[str, str] | None = None,
        step_ms: int | None = None,
        agg: Agg = Agg.AVG,
        tier: Tier | None = None,
        cursor: str | None = None,
        limit: int = 10_000,
    ) -> RangeResult:
        chosen = tier or pick_tier(
            start_ms, end_ms, step_ms, self.state.clock(), self.state.retention
        )
        native = _TIER_STEP[chosen]
        step = max(step_ms or native, native, 1)
        head = self.state.heads.get(host_id)
        cols = self._columns(head, metric, labels) if head else []
        if head is None or not cols:
            return RangeResult(chosen, self._reported_step(step, head), [])
        lo = start_ms if cursor is None else max(start_ms, _parse_cursor(cursor))
        ids = np.array([c.series_id for _, c in cols], dtype=np.int64)
        colidx = np.array([j for j, _ in cols], dtype=np.intp)
        parts: list[rollup.Rows] = []
        kind = _TIER_KIND[chosen]
        span = DAY_MS if kind in (Kind.MINUTE, Kind.HOUR) else self.state.block_ms
        versions = self.state.block_versions
        while True:
            # a compaction that commits during the read moves windows from the head into
            # blocks the read may not have seen: read again (no await from the check to the
            # head's part, so the two sources are of one moment)
            before = versions.now
            stored = await self._stored_rows(head.key, kind, lo, end_ms, span, ids)
            if versions.since(head.key, kind) <= before:
                break
        # the buckets that end before the head's first sample hold stored rows only
        until = min(self._head_from(head), end_ms + 1)
        if native:
            until -= until % native  # head rows are labelled by the tier's bucket
        version = (versions.token, head.key, int(kind), versions.since(head.key, kind))
        keys: list[Hashable] = [(*version, step, agg.value, c.series_id) for _, c in cols]
        first = lo - lo % step
        # A range that starts inside a bucket answers that bucket from its own rows (those at
        # or after ``lo``): it is never taken from, nor kept as, points of another read.
        whole = first if lo == first else first + step
        sealed = until - until % step  # the buckets before it end at or before ``until``
        head_rows = self._head_rows(head, colidx, lo, end_ms, native)
        # The answer is that of the rows of [first, end] of both sources, the bucket grid,
        # aggregation, series and limit. A read that repeats one with all of them the same
        # (the same rows of the same kept rows) while nothing of the host changed (a board's
        # widgets; dashboards polling a host that stopped) takes the first one's points: a
        # repeated 30-day read's bucketing, aggregation and joins were ~60 % of its CPU.
        marks: list[Hashable] = [*keys, first, whole, limit]
        for got in (stored, head_rows):
            marks.append(_rows_mark(got, first, end_ms))
        memo = tuple(marks) if None not in marks else None
        answer = self._answers.get(memo) if memo is not None else None
        if answer is not None:
            out, next_cursor = list(answer.series), answer.next_cursor
        else:
            kept = None
            if cursor is None and 0 < (end_ms - first) // step + 1 <= limit:
                kept = self._kept.get(keys, whole)  # (no page can be cut: no cursor to give)
            # the buckets [whole, from_) come from the kept points
            from_ = whole if kept is None else max(whole, min(kept.sealed, sealed))
            # the rows of [first, end] but the kept buckets', each part taken once (the stored
            # part also to the blocks the read selects): what taking them after their concat
            # gave
            for got in (stored, head_rows):
                parts += _within(got, first, end_ms, whole, from_)
            arrays, next_cursor = self._aggregate(
                parts, len(cols), step, agg, limit, kept, whole, from_
            )
            if next_cursor is None and (kept is None or sealed > from_):
                self._kept.put(keys, whole, sealed, arrays)
            out = [
                SeriesPoints(c.metric, c.labels, arrays=a)
                for (_, c), a in zip(cols, arrays, strict=True)
            ]
            if memo is not None:
                masks = sum(len(m[1]) for m in marks if isinstance(m, tuple) and len(m) == 2)
                self._answers.put(memo, _Answer(out, next_cursor, masks))
        stable = StablePoints(keys, until, step, whole)
        return RangeResult(chosen, self._reported_step(step, head), out, next_cursor, stable)

    @staticmethod
    def _aggregate(
        parts: list[rollup.Rows],
        cols: int,
        step: int,
        agg: Agg,
        limit: int,
        kept: _Kept | None,
        whole: int,
        from_: int,
    ) -> tuple[list[PointArrays], str | None]:
        """The points of each series of ``parts`` in buckets of ``step``, with the ``kept``
        buckets of ``[whole, from_)`` put in their place, and the ``next_cursor``."""
        merged = rollup.bucket(rollup.concat(parts, cols), step)
        has: npt.NDArray[np.bool_] = np.asarray((merged.count > 0).any(axis=1))
        if not has.all():
            merged = merged.take(has)
        next_cursor = None
        if len(merged.ts) > limit > 0:
            cut = int(merged.ts[limit])
            merged = merged.take(np.asarray(merged.ts < cut))
            next_cursor = f"{_CURSOR_PREFIX}{cut}"
        arrays = [_points(merged, i, agg) for i in range(cols)]
        if kept is not None:
            arrays = [_joined(p, whole, from_, a) for p, a in zip(kept.points, arrays, strict=True)]
        for p in arrays:
            for a in (p.ts_ms, p.value, p.min, p.max, p.count):
                a.flags.writeable = False  # kept, and given to every read that repeats this one
        return arrays, next_cursor

    def _head_from(self, head: HostHead) -> int:
        """The watermark, or the start of an older window of ``head`` (late samples, one
        being compacted): no history row before it comes from the head."""
        starts = [b.start for b in head.windows.values() if b.n]
        starts += [b.start for (k, _), b in self.state.compacting.items() if k == head.key and b.n]
        return min([self.state.watermark, *starts])

    def _columns(
        self, head: HostHead, metric: str, labels: dict[str, str] | None
    ) -> list[tuple[int, SeriesCol]]:
        """The head's columns (position, column) of ``metric`` with ``labels``. A host's
        columns are only ever appended to, so a lookup stays right while their number has not
        changed (a scan of ~150 columns in Python per read otherwise)."""
        key = (head.key, metric, tuple(sorted(labels.items())) if labels else ())
        known = self._cols.get(key)
        if known is not None and known[0] is head and known[1] == len(head.columns):
            return known[2]
        cols = [(j, c) for j, c in enumerate(head.columns) if _match(c, metric, labels)]
        if len(self._cols) >= COLUMN_LOOKUPS:
            self._cols.clear()
        self._cols[key] = (head, len(head.columns), cols)
        return cols

    async def _stored_rows(
        self, key: int, kind: Kind, lo: int, end: int, span: int, ids: I64
    ) -> Selected:
        """The rows of the stored blocks of ``[lo, end]`` and which of them (None: all). A
        range that reaches the watermark (a dashboard's "last 24 hours") is kept whole, so
        that the next reads of it are answered without a read of the database until the
        blocks change (``SealedCache`` in ``blockread.py``); an older range is read on its
        own."""
        reader = self._block_reader()
        if end < self.state.watermark:
            return Selected(await reader.rows(key, kind, lo, end, span, ids))
        got = reader.cached_rows(key, kind, lo, end, span, ids)
        if got is not None:
            return got
        return await reader.sealed_rows(key, kind, lo, end, span, ids)

    def _head_rows(self, head: HostHead, colidx: IntP, lo: int, end: int, native: int) -> Selected:
        """The samples of columns ``colidx`` in the head's windows and those being compacted
        that overlap ``[lo, end]``, as rows of the tier (``native`` ms; raw when 0), bucketed
        per window as stored blocks are. One aggregation for all windows: a head holding a day
        (after a restart, 144 windows) cost 0.15 ms per window as one call each, 20 ms a read."""
        block = self.state.block_ms
        bufs = list(head.windows.values())
        bufs += [b for (k, _), b in self.state.compacting.items() if k == head.key]
        keep = [b for b in bufs if b.n and b.start <= end and b.start + block > lo]
        if not keep:
            return Selected(rollup.empty(len(colidx)))
        # The same windows, unchanged since (``WindowBuf.version``), give the same rows: kept
        # for the next read of these columns until the host's next samples (a board's
        # widgets, a dashboard's repeated "last 24 hours"; 30 us of a 30-day read's ~100).
        key = (head.key, native, colidx.tobytes())
        windows = tuple((b.version, b.n, b.old is not None, b.vals.shape[1]) for b in keep)
        got = self._head_kept.get(key)
        if got is None or got.windows != windows:
            rows = self._head_rows_of(keep, colidx, native)
            for a in (rows.ts, rows.count, rows.sum, rows.min, rows.max, rows.last):
                a.flags.writeable = False  # shared by the reads that hit: nobody may change them
            got = _HeadKept(windows, rows)
            self._head_kept.put(key, got)
        return Selected(got.rows, source=got.source)

    def _head_rows_of(self, keep: list[WindowBuf], colidx: IntP, native: int) -> rollup.Rows:
        block = self.state.block_ms
        ts_parts: list[I64] = []
        val_parts: list[F64] = []
        for buf in keep:
            n = buf.n
            if buf.old is None and colidx.max() < buf.vals.shape[1]:  # the usual window
                sub = buf.vals[:n, colidx]
            else:
                ok = colidx < buf.vals.shape[1]
                cells = buf.vals[:n, colidx[ok]]
                if buf.old is not None:  # already in stored blocks
                    cells = np.where(buf.old[:n, colidx[ok]], np.nan, cells)
                    if np.isnan(cells).all():
                        # nothing that is not stored: a window loaded again for a late or
                        # replayed request (after a restart, every window the WAL held)
                        continue
                sub = np.full((n, len(colidx)), np.nan)
                sub[:, ok] = cells
            ts_parts.append(buf.ts[:n])
            val_parts.append(sub)
        if not ts_parts:
            return rollup.empty(len(colidx))
        # copies (the window's arrays grow and change under the kept rows)
        raw = rollup.from_raw(np.concatenate(ts_parts), np.concatenate(val_parts))
        if not native:
            return raw
        # windows are aligned to ``block`` ms, which divides an hour: buckets of at most one
        # window, labelled by the tier's bucket, are what one bucketing per window gave
        rows = rollup.bucket(raw, min(native, block))
        if native > block:
            rows.ts = rows.ts - rows.ts % native
        return rows

    @staticmethod
    def _reported_step(step: int, head: HostHead | None) -> int:
        """Raw points without a step are the agent's own samples: report its interval."""
        if step == 1 and head is not None:
            return max(1, int(head.record.interval_seconds * 1000))
        return step

    async def processes(self, host_id: str, at_ms: int | None = None) -> ProcessSnapshot | None:
        head = self.state.heads.get(host_id)
        if head is None:
            return None
        at = at_ms if at_ms is not None else 2**62
        best: Snapshot | None = None
        for s in self._memory_procs(head):
            if s.timestamp_ms <= at and (best is None or s.timestamp_ms > best.timestamp_ms):
                best = s
        async with self.state.engine.connect() as conn:
            rows = await conn.execute(
                select(blocks.c.data)
                .where(
                    blocks.c.host_key == head.key,
                    blocks.c.kind == Kind.PROCESSES,
                    blocks.c.start_ms <= at,
                    blocks.c.group_ms
                    > (best.timestamp_ms - self.state.block_ms if best else -(2**62)),
                )
                .order_by(blocks.c.group_ms.desc())
                .limit(4)
            )
            datas = [r[0] for r in rows]
        for data in datas:
            for s in decode_processes(data):
                if s.timestamp_ms <= at and (best is None or s.timestamp_ms > best.timestamp_ms):
                    best = s
        return _proc_snapshot(best) if best is not None else None

    def _memory_procs(self, head: HostHead) -> list[Snapshot]:
        return head.procs + self.state.compacting_procs.get(head.key, [])

    async def process_history(
        self, host_id: str, start_ms: int, end_ms: int
    ) -> list[ProcessSnapshot]:
        head = self.state.heads.get(host_id)
        if head is None:
            return []
        found: dict[int, Snapshot] = {}
        for data in await self._blobs(head.key, Kind.PROCESSES, start_ms, end_ms):
            for s in decode_processes(data):
                found.setdefault(s.timestamp_ms, s)
        for s in self._memory_procs(head):
            found.setdefault(s.timestamp_ms, s)
        return [_proc_snapshot(found[t]) for t in sorted(found) if start_ms <= t <= end_ms]


def _parse_cursor(cursor: str) -> int:
    if not cursor.startswith(_CURSOR_PREFIX) or not cursor[1:].lstrip("-").isdigit():
        raise BadCursorError(f"invalid cursor {cursor!r}")
    return int(cursor[1:])


def _within(got: Selected, first: int, end: int, whole: int, from_: int) -> list[rollup.Rows]:
    """The rows of ``got`` it keeps with timestamps in ``[first, end]``, but not in
    ``[whole, from_)`` (the kept buckets) when ``from_`` is after ``whole``; in their order.
    Ordered rows that are all kept are cut by bisection (a 24 h read's 1,440 stored rows,
    of which it keeps a few: a fifth of the masks and takes' CPU)."""
    rows = got.rows
    ts = rows.ts
    if not len(ts):  # a head with nothing newer than the blocks
        return []
    if got.ordered and got.keep is None:
        a, w, f = np.searchsorted(ts, (first, whole, from_)).tolist()
        b = int(np.searchsorted(ts, end, side="right"))
        spans = [(a, min(w, b)), (max(f, a), b)] if from_ > whole else [(a, b)]
        return [rows.cut(i, j) for i, j in spans if i < j]
    inside = (ts >= first) & (ts <= end)
    if from_ > whole:
        inside &= (ts < whole) | (ts >= from_)
    if got.keep is not None:
        inside &= got.keep
    return [rows if inside.all() else rows.take(inside)]


def _rows_mark(got: Selected, first: int, end: int) -> Hashable:
    """Which rows of ``got`` a read of ``[first, end]`` takes, for rows that never change
    (``got.source``): (source, first row, end row) of ordered rows, (source, all) when all of
    them, (source, the mask's bits) when some, () when none; None for rows made for this read
    (``source`` None)."""
    ts = got.rows.ts
    if not len(ts):
        return ()
    src = got.source
    if src is None:
        return None
    if got.ordered and got.keep is None:
        a = int(np.searchsorted(ts, first))
        b = int(np.searchsorted(ts, end, side="right"))
        return (src, a, b) if a < b else ()
    inside = (ts >= first) & (ts <= end)
    if got.keep is not None:
        inside &= got.keep
    if inside.all():
        return (src, "all")
    if not inside.any():
        return ()
    return (src, np.packbits(inside).tobytes())


def _joined(kept: PointArrays, whole: int, from_: int, new: PointArrays) -> PointArrays:
    """``new`` with the kept points of the buckets ``[whole, from_)`` put in their place (``new``
    has none there: its rows there were left out)."""
    ts = kept.ts_ms
    i, j = np.searchsorted(ts, (whole, from_)).tolist()
    if i == j:
        return new
    k = int(np.searchsorted(new.ts_ms, whole))

    def spliced(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.concatenate((a[:k], b[i:j], a[k:]))

    return PointArrays(
        spliced(new.ts_ms, ts),
        spliced(new.value, kept.value),
        spliced(new.min, kept.min),
        spliced(new.max, kept.max),
        spliced(new.count, kept.count),
    )


def _points(rows: rollup.Rows, j: int, agg: Agg) -> PointArrays:
    present = rows.count[:, j] > 0
    lo = rows.min[present, j]
    hi = rows.max[present, j]
    if agg is Agg.AVG:
        # within [min, max], as an average is: also when the sum of values near the float
        # maximum had to be clamped (rollup.bucket)
        value = np.clip(rows.sum[present, j] / rows.count[present, j], lo, hi)
    elif agg is Agg.MIN:
        value = lo
    elif agg is Agg.MAX:
        value = hi
    else:
        value = rows.last[present, j]
    count = rows.count[present, j].astype(np.int64)
    return PointArrays(rows.ts[present], value, lo, hi, count)
