"""The SQLite store: write-ahead log + in-memory head + compressed blocks in SQLite.

Ingest path: the request is appended to the WAL and fsynced (group commit), then applied to
the head (one vectorised row write per snapshot). ``maintain`` compacts head windows older
than the watermark into blocks (raw + 1-minute + 1-hour partial rollups), merges partial
blocks, enforces retention and drops WAL segments that are fully committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
from google.protobuf.message import DecodeError
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.protocol import IngestRequest, Snapshot
from hostpulse.store import codec, db, schema
from hostpulse.store.exceptions import (
    InvalidRequestError,
    StoreClosedError,
    StoreUnavailableError,
)
from hostpulse.store.head import HostHead, IntP, WindowBuf
from hostpulse.store.maintenance import Maintenance
from hostpulse.store.prepare import (
    REPLAY_FUTURE_MS,
    Prepared,
    drop_outside,
    prepare,
    prepare_async,
)
from hostpulse.store.reads import Reads
from hostpulse.store.registry import Key, Registry, _Job
from hostpulse.store.types import HostRecord, IngestResult, Retention, StoreStats
from hostpulse.store.wal import WriteAheadLog

logger = logging.getLogger(__name__)

Clock = Callable[[], int]
DEFAULT_RETENTION = Retention()


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SQLiteStore(Registry, Reads, Maintenance):
    """The embedded store on a SQLite ``Database``; the WAL lives in ``wal_dir``. With
    ``owns_database`` the store opens (migrates) and closes the database itself; else it was
    opened by the process (the server) and is only used here."""

    def __init__(
        self,
        database: db.Database,
        wal_dir: Path,
        *,
        owns_database: bool = False,
        retention: Retention = DEFAULT_RETENTION,
        clock: Clock = wall_clock_ms,
        block_ms: int = 600_000,
        grace_ms: int = 60_000,
        process_interval_ms: int = 30_000,
        compression_level: int = 3,
    ) -> None:
        if 3_600_000 % block_ms or block_ms % 60_000:
            raise ValueError("block_ms must be a whole number of minutes dividing one hour")
        self.database = database
        self.owns_database = owns_database
        self.wal_dir = wal_dir
        self.retention = retention
        self.clock = clock
        self.block_ms = block_ms
        self.grace_ms = grace_ms
        self.process_interval_ms = process_interval_ms
        self.level = compression_level
        self._engine: AsyncEngine | None = None
        self._wal: WriteAheadLog | None = None
        self.heads: dict[str, HostHead] = {}
        self.by_key: dict[int, HostHead] = {}
        self.watermark = 0
        self.compacting: dict[tuple[int, int], WindowBuf] = {}
        self.compacting_procs: dict[int, list[Snapshot]] = {}
        self._lock = asyncio.Lock()  # head mutation vs compaction hand-over
        self._reg_lock = asyncio.Lock()  # host/series registration
        self._reg_jobs: list[_Job] = []
        self._keys_cache: dict[bytes, list[Key]] = {}
        self._maint_lock = asyncio.Lock()
        self.touched_groups: dict[tuple[int, int, int], int] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreClosedError("store is not started")
        return self._engine

    @property
    def wal(self) -> WriteAheadLog:
        if self._wal is None:
            raise StoreClosedError("store is not started")
        return self._wal

    async def start(self) -> None:
        if self._engine is not None:
            return
        if self.owns_database:
            await self.database.open()
        self._engine = self.database.engine
        await self._load_metadata()
        self._wal = WriteAheadLog(self.wal_dir)
        replayed = 0
        now = self.clock()
        oldest, newest = now - self.retention.raw * 1000, now + REPLAY_FUTURE_MS
        for seg, payload in self._wal.read_existing():
            req = IngestRequest()
            try:
                req.ParseFromString(payload)
                dropped = drop_outside(req, oldest, newest)
                if dropped:
                    logger.error(
                        "wal %s: skipping %d snapshots outside [now - retention_raw, now + 1 d]",
                        seg.path,
                        dropped,
                    )
                prep = prepare(req)
                await self._apply_durable(prep, await self.register(prep, 0))
            except (DecodeError, InvalidRequestError) as exc:
                logger.error("wal %s: skipping a record that cannot be applied: %s", seg.path, exc)
                continue
            seg.max_ts = max(seg.max_ts, prep.newest_ms)
            replayed += 1
        self._wal.finish_replay()
        await self._find_touched_groups()
        logger.info("store started: %d hosts, %d wal records replayed", len(self.heads), replayed)

    async def close(self) -> None:
        if self._engine is None:
            return
        if self._wal is not None:
            await self._wal.close()
            self._wal = None
        try:
            await self._save_last_seen()
        finally:
            if self.owns_database:
                await self.database.close()
            self._engine = None

    async def ready(self) -> bool:
        if self._engine is None or self._wal is None:
            return False
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        try:
            await asyncio.to_thread(self._wal.probe)
        except OSError as exc:  # disk full, data directory gone
            logger.warning("store not ready: cannot write in %s: %s", self.wal_dir, exc)
            return False
        return True

    async def _load_metadata(self) -> None:
        async with self.engine.connect() as conn:
            for row in (await conn.execute(select(schema.hosts))).mappings():
                rec = HostRecord(
                    host_id=row["host_id"],
                    hostname=row["hostname"],
                    os=row["os"],
                    kernel=row["kernel"],
                    arch=row["arch"],
                    cpu_model=row["cpu_model"],
                    boot_time=row["boot_time"],
                    logical_cores=row["logical_cores"],
                    memory_bytes=row["memory_bytes"],
                    labels=json.loads(row["labels"]),
                    interval_seconds=row["interval_seconds"],
                    agent_version=row["agent_version"],
                    unsupported=json.loads(row["unsupported"]),
                    first_seen_ms=row["first_seen_ms"],
                    last_seen_ms=row["last_seen_ms"],
                )
                head = HostHead(row["id"], rec)
                self.heads[rec.host_id] = head
                self.by_key[head.key] = head
            found = await conn.exec_driver_sql(
                "SELECT id, host_key, metric, labels FROM ts_series ORDER BY host_key, id"
            )
            for sid, host_key, metric, labels in cast(
                "list[tuple[int, int, str, str]]", found.all()
            ):
                self.add_col(self.by_key[host_key], sid, metric, labels)
            wm = await conn.scalar(
                select(schema.meta.c.value).where(schema.meta.c.key == "watermark")
            )
            self.watermark = int(wm) if wm is not None else 0

    # --- ingest --------------------------------------------------------------------------------

    async def ingest(self, request: IngestRequest, received_ms: int) -> IngestResult:
        prep = await prepare_async(request)
        try:
            colmaps = await self.register(prep, received_ms)
        except OperationalError as exc:  # e.g. "database or disk is full", "database is locked"
            raise StoreUnavailableError(f"the store cannot write: {exc.orig}") from exc
        seg, durable = self.wal.begin(prep.payload, prep.newest_ms)
        try:
            try:
                await durable
            except OSError as exc:
                raise StoreUnavailableError(
                    f"the store cannot write: {exc.strerror or exc}"
                ) from exc
            return await self._apply_durable(prep, colmaps)
        finally:
            await self.wal.applied(seg)

    async def _apply_durable(self, prep: Prepared, colmaps: list[IntP]) -> IngestResult:
        async with self._lock:
            await self._load_late_windows(prep)
            return self._apply(prep, colmaps)

    def _apply(self, prep: Prepared, colmaps: list[IntP]) -> IngestResult:
        accepted = duplicates = 0
        bms = self.block_ms
        for pb, cols_of in zip(prep.batches, colmaps, strict=True):
            head = self.heads[pb.batch.host.host_id]
            newest = head.record.last_seen_ms
            for ps in pb.snapshots:
                ts = ps.ts
                buf = head.window(ts - ts % bms)
                if len(ps.index):
                    cols = cols_of[ps.index]
                    new = buf.put(ts, cols, ps.values)
                    accepted += new
                    duplicates += len(cols) - new
                    head.note_latest(ts, cols, ps.values)
                snap = ps.source
                if snap.top_cpu or snap.top_memory:
                    head.keep_processes(snap, self.process_interval_ms)
                newest = max(newest, ts)
            head.record.last_seen_ms = newest
        return IngestResult(accepted, duplicates)

    async def _load_late_windows(self, prep: Prepared) -> None:
        """Windows already compacted get their stored samples loaded first, so that a resent
        or back-filled sample is recognised as a duplicate."""
        bms = self.block_ms
        for pb in prep.batches:
            head = self.heads[pb.batch.host.host_id]
            for ps in pb.snapshots:
                w = ps.ts - ps.ts % bms
                if w < self.watermark and w not in head.windows:
                    await self._load_window(head, w)

    async def _load_window(self, head: HostHead, w: int) -> None:
        buf = head.window(w)
        buf.old = np.zeros(buf.vals.shape, dtype=np.bool_)
        sources: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        pending = self.compacting.get((head.key, w))
        if pending is not None:
            ts, vals = pending.new_samples()
            cols = np.arange(vals.shape[1], dtype=np.intp)
            sources.append((ts, cols, vals))
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(schema.blocks.c.data).where(
                    schema.blocks.c.host_key == head.key,
                    schema.blocks.c.kind == schema.Kind.RAW,
                    schema.blocks.c.group_ms == w,
                )
            )
            for (data,) in rows:
                b = codec.decode(data)
                cols = np.array([head.col_of[int(s)] for s in b.ids], dtype=np.intp)
                sources.append((b.ts, cols, b.matrix(0)))
        for ts, cols, vals in sources:
            buf.ensure_cols(len(head.columns))
            buf.mark_stored(ts, cols, vals)

    async def _save_last_seen(self) -> None:
        if not self.heads:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(schema.hosts)
                .where(schema.hosts.c.id == bindparam("k"))
                .values(last_seen_ms=bindparam("seen")),
                [{"k": h.key, "seen": h.record.last_seen_ms} for h in self.heads.values()],
            )

    async def _find_touched_groups(self) -> None:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    schema.blocks.c.host_key,
                    schema.blocks.c.kind,
                    schema.blocks.c.group_ms,
                    func.count(),
                )
                .group_by(schema.blocks.c.host_key, schema.blocks.c.kind, schema.blocks.c.group_ms)
                .having(func.count() > 1)
            )
            self.touched_groups = {(int(a), int(b), int(c)): int(n) for a, b, c, n in rows}

    # --- stats ---------------------------------------------------------------------------------

    async def stats(self) -> StoreStats:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(schema.blocks.c.kind, func.sum(schema.blocks.c.samples)).group_by(
                    schema.blocks.c.kind
                )
            )
            by_kind = {int(k): int(n or 0) for k, n in rows}
        head_samples = sum(b.count_new() for h in self.heads.values() for b in h.windows.values())
        head_samples += sum(b.count_new() for b in self.compacting.values())
        return StoreStats(
            hosts=len(self.heads),
            series=sum(len(h.columns) for h in self.heads.values()),
            raw_samples=by_kind.get(schema.Kind.RAW, 0) + head_samples,
            minute_points=by_kind.get(schema.Kind.MINUTE, 0),
            hour_points=by_kind.get(schema.Kind.HOUR, 0),
            bytes_on_disk=self.bytes_on_disk(),
        )

    def bytes_on_disk(self) -> int:
        path = Path(self.engine.url.database or "")
        total = 0
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if p.exists():
                total += p.stat().st_size
        return total + (self._wal.bytes_on_disk() if self._wal else 0)
