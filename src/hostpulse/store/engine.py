"""The SQLite store: write-ahead log + in-memory head + compressed blocks in SQLite.

Ingest path: the request is appended to the WAL and fsynced (group commit), then applied to
the head (one vectorised row write per snapshot). ``maintain`` compacts head windows older
than the watermark into blocks (raw + 1-minute + 1-hour partial rollups), merges partial
blocks, enforces retention and drops WAL segments that are fully committed.

``SQLiteStore`` is a facade: the state lives in one ``StoreState`` (``state.py``) handed to the
``Registrar`` (``registry.py``), ``HeadWriter`` (``writer.py``), ``Reader`` (``reads.py``) and
``Compactor`` (``maintenance.py``); this module starts and stops them and implements the
``Store`` Protocol by delegating.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import cast

from google.protobuf.message import DecodeError
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.protocol import IngestRequest
from hostpulse.store import budget, db, schema
from hostpulse.store.budget import HeadBudget
from hostpulse.store.exceptions import InvalidRequestError, StoreUnavailableError
from hostpulse.store.head import HostHead
from hostpulse.store.maintenance import Compactor
from hostpulse.store.prepare import (
    REPLAY_FUTURE_MS,
    Prepared,
    drop_outside,
    prepare,
    prepare_async,
)
from hostpulse.store.reads import Reader
from hostpulse.store.registry import Registrar
from hostpulse.store.state import Clock, StoreState, wall_clock_ms
from hostpulse.store.types import (
    Agg,
    HostRecord,
    IngestResult,
    LatestValue,
    ProcessSnapshot,
    RangeResult,
    Retention,
    SeriesInfo,
    StoreStats,
    Tier,
)
from hostpulse.store.wal import WriteAheadLog
from hostpulse.store.writer import HeadWriter

logger = logging.getLogger(__name__)

DEFAULT_RETENTION = Retention()

__all__ = ["Clock", "SQLiteStore", "wall_clock_ms"]


class SQLiteStore:
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
        head_budget: HeadBudget | None = None,
    ) -> None:
        if 3_600_000 % block_ms or block_ms % 60_000:
            raise ValueError("block_ms must be a whole number of minutes dividing one hour")
        self.state = StoreState(
            database=database,
            wal_dir=wal_dir,
            retention=retention,
            clock=clock,
            block_ms=block_ms,
            grace_ms=grace_ms,
            process_interval_ms=process_interval_ms,
            level=compression_level,
            owns_database=owns_database,
            budget=head_budget or HeadBudget(),
        )
        self.registrar = Registrar(self.state)
        self.writer = HeadWriter(self.state)
        self.reader = Reader(self.state)
        self.compactor = Compactor(self.state)

    @property
    def engine(self) -> AsyncEngine:
        return self.state.engine

    @property
    def wal(self) -> WriteAheadLog:
        return self.state.wal

    @property
    def heads(self) -> dict[str, HostHead]:
        return self.state.heads

    @property
    def watermark(self) -> int:
        """Windows starting before this are on disk (the server's compaction-lag metric)."""
        return self.state.watermark

    @property
    def head_bytes(self) -> int:
        """What the in-memory heads hold, counted against ``HeadBudget.total``."""
        return self.state.head_bytes

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        st = self.state
        if st.opened_engine is not None:
            return
        if st.owns_database:
            await st.database.open()
        st.opened_engine = st.database.engine
        await self._load_metadata()
        wal = st.opened_wal = WriteAheadLog(st.wal_dir)
        replayed = 0
        now = st.clock()
        oldest, newest = now - st.retention.raw * 1000, now + REPLAY_FUTURE_MS
        for seg, payload in wal.read_existing():
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
                colmaps = await self.registrar.register(prep, 0)
                if not budget.fits(st, prep):  # acknowledged: stored, after making room
                    await self.registrar.flush()  # blocks name hosts and series by id
                    await self.compactor.compact(st.clock() - st.grace_ms, rotate=False)
                await self.writer.apply_durable(prep, colmaps)
            except (DecodeError, InvalidRequestError) as exc:
                logger.error("wal %s: skipping a record that cannot be applied: %s", seg.path, exc)
                continue
            seg.max_ts = max(seg.max_ts, prep.newest_ms)
            replayed += 1
        wal.finish_replay()
        await self.registrar.flush()
        await self.compactor.find_touched_groups()
        stored = self.compactor.drop_stored_windows()
        logger.info(
            "store started: %d hosts, %d wal records replayed (%d windows already stored)",
            len(st.heads),
            replayed,
            stored,
        )

    async def close(self) -> None:
        st = self.state
        if st.opened_engine is None:
            return
        self.reader.close()
        if st.opened_wal is not None:
            await st.opened_wal.close()
            st.opened_wal = None
        try:
            await self.registrar.flush()
            await self._save_last_seen()
        finally:
            if st.owns_database:
                await st.database.close()
            st.opened_engine = None

    async def ready(self) -> bool:
        st = self.state
        if st.opened_engine is None or st.opened_wal is None:
            return False
        async with st.opened_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        try:
            await asyncio.to_thread(st.opened_wal.probe)
        except OSError as exc:  # disk full, data directory gone
            logger.warning("store not ready: cannot write in %s: %s", st.wal_dir, exc)
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
                self.state.heads[rec.host_id] = head
                self.state.by_key[head.key] = head
            found = await conn.exec_driver_sql(
                "SELECT id, host_key, metric, labels FROM ts_series ORDER BY host_key, id"
            )
            for sid, host_key, metric, labels in cast(
                "list[tuple[int, int, str, str]]", found.all()
            ):
                self.registrar.add_col(self.state.by_key[host_key], sid, metric, labels)
            wm = await conn.scalar(
                select(schema.meta.c.value).where(schema.meta.c.key == "watermark")
            )
            self.state.watermark = int(wm) if wm is not None else 0

    # --- ingest --------------------------------------------------------------------------------

    async def ingest(self, request: IngestRequest, received_ms: int) -> IngestResult:
        return await self.ingest_prepared(await prepare_async(request), received_ms)

    async def ingest_prepared(self, prep: Prepared, received_ms: int) -> IngestResult:
        """``ingest`` of a request already prepared (``prepare``; by an ingest worker process,
        ``server/ingest/worker.py``)."""
        colmaps = await self.registrar.register(prep, received_ms)  # the database comes after
        st = self.state
        taken = budget.reserve(st, prep)  # HeadFullError before anything is in the WAL
        try:
            wal = st.wal
            seg, durable = wal.begin(prep.payload, prep.newest_ms)
            try:
                try:
                    await durable
                except OSError as exc:
                    raise StoreUnavailableError(
                        f"the store cannot write: {exc.strerror or exc}"
                    ) from exc
                return await self.writer.apply_durable(prep, colmaps)
            finally:
                wal.applied(seg)
        finally:
            budget.release(st, taken)

    async def _save_last_seen(self) -> None:
        if not self.state.heads:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(schema.hosts)
                .where(schema.hosts.c.id == bindparam("k"))
                .values(last_seen_ms=bindparam("seen")),
                [{"k": h.key, "seen": h.record.last_seen_ms} for h in self.state.heads.values()],
            )

    # --- reads (Reader) -------------------------------------------------------------------------

    async def hosts(self) -> list[HostRecord]:
        return await self.reader.hosts()

    async def host(self, host_id: str) -> HostRecord | None:
        return await self.reader.host(host_id)

    async def series(
        self, host_id: str, metric: str | None = None, labels: dict[str, str] | None = None
    ) -> list[SeriesInfo]:
        return await self.reader.series(host_id, metric, labels)

    async def latest(self, host_id: str, metrics: list[str] | None = None) -> list[LatestValue]:
        return await self.reader.latest(host_id, metrics)

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
        return await self.reader.query_range(
            host_id,
            metric,
            start_ms,
            end_ms,
            labels=labels,
            step_ms=step_ms,
            agg=agg,
            tier=tier,
            cursor=cursor,
            limit=limit,
        )

    async def processes(self, host_id: str, at_ms: int | None = None) -> ProcessSnapshot | None:
        return await self.reader.processes(host_id, at_ms)

    async def process_history(
        self, host_id: str, start_ms: int, end_ms: int
    ) -> list[ProcessSnapshot]:
        return await self.reader.process_history(host_id, start_ms, end_ms)

    # --- maintenance (Compactor) -----------------------------------------------------------------

    async def maintain(self, now_ms: int) -> None:
        await self.registrar.flush()  # blocks name hosts and series by id
        await self.compactor.maintain(now_ms)

    # --- stats ---------------------------------------------------------------------------------

    async def stats(self) -> StoreStats:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(schema.blocks.c.kind, func.sum(schema.blocks.c.samples)).group_by(
                    schema.blocks.c.kind
                )
            )
            by_kind = {int(k): int(n or 0) for k, n in rows}
        st = self.state
        head_samples = sum(b.count_new() for h in st.heads.values() for b in h.windows.values())
        head_samples += sum(b.count_new() for b in st.compacting.values())
        return StoreStats(
            hosts=len(st.heads),
            series=sum(len(h.columns) for h in st.heads.values()),
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
        wal = self.state.opened_wal
        return total + (wal.bytes_on_disk() if wal else 0)
