"""``TsdbStore``: the ``Store`` whose samples live in a Prometheus-compatible TSDB
(VictoriaMetrics single-node or cluster, Prometheus with its remote-write receiver).

- Writes: remote write (``remote_write``); ``ingest`` returns only once the TSDB answered 2xx
  to every part of the request, so the agent's request is acknowledged only after the TSDB
  acknowledged (at-least-once end to end; the TSDB de-duplicates resends, docs/tsdb.md).
- Reads: the Prometheus query API; history with ``avg/min/max/count_over_time`` per step
  (``tsdb.history``: one ``aggr_over_time`` query where the TSDB takes it).
- The host and series registry and the kept process lists: the process's relational
  ``Database`` (SQLite or PostgreSQL; tables in ``tsdb.schema``), shared by every replica.
  A host's ``last_seen_ms`` is kept in memory on ingest and written to the database every
  ``flush_interval_ms``; the host list (other replicas' hosts and last_seen) is read from
  there in the background every ``refresh_interval_ms``, and at once for an unknown host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson
from sqlalchemy import Table, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from hostpulse.protocol import HostBatch, IngestRequest, Process, Snapshot
from hostpulse.store import db
from hostpulse.store.exceptions import (
    BadCursorError,
    InvalidRequestError,
    StoreClosedError,
    StoreUnavailableError,
)
from hostpulse.store.tsdb import queries as q
from hostpulse.store.tsdb import schema
from hostpulse.store.tsdb.endpoints import Endpoints
from hostpulse.store.tsdb.group import GroupWriter
from hostpulse.store.tsdb.history import (
    CURSOR_PREFIX,
    ROLLUP_LABEL,
    BucketReader,
    RefusedQueryError,
)
from hostpulse.store.tsdb.http1 import HTTPError, PostClient, needs_httpx
from hostpulse.store.tsdb.remote_write import (
    CONTENT_HEADERS,
    SeriesTable,
    compress,
    series_problem,
    write_chunks,
)
from hostpulse.store.types import (
    Agg,
    HostRecord,
    IngestResult,
    LatestValue,
    Point,
    ProcessRow,
    ProcessSnapshot,
    RangeResult,
    Retention,
    SeriesInfo,
    SeriesPoints,
    StoreStats,
    Tier,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], int]
Key = tuple[str, tuple[tuple[str, str], ...]]

RAW_MAX_SPAN_MS = 6 * 3_600_000
MINUTE_MAX_SPAN_MS = 7 * 86_400_000
_TIER_STEP = {Tier.RAW: 0, Tier.MINUTE: 60_000, Tier.HOUR: 3_600_000}
_CURSOR_PREFIX = CURSOR_PREFIX
TABLES_PER_HOST = 4
"""Series tables remembered per host (an agent whose containers come and go alternates)."""
INLINE_SAMPLES = 5_000
"""A request of at most this many samples is encoded on the event loop (about a millisecond)."""
_HOST_COLUMNS = (
    "hostname",
    "os",
    "kernel",
    "arch",
    "cpu_model",
    "boot_time",
    "logical_cores",
    "memory_bytes",
    "labels",
    "interval_seconds",
    "agent_version",
    "unsupported",
)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def pick_tier(start_ms: int, end_ms: int, step_ms: int | None) -> Tier:
    """The embedded store's choice (raw up to 6 h or a step under a minute, 1-minute up to
    7 days or a step under an hour, else 1-hour); the TSDB keeps raw samples throughout, so
    the tier only names the resolution of the answer."""
    if step_ms is not None:
        return Tier.RAW if step_ms < 60_000 else Tier.MINUTE if step_ms < 3_600_000 else Tier.HOUR
    span = end_ms - start_ms
    if span <= RAW_MAX_SPAN_MS:
        return Tier.RAW
    return Tier.MINUTE if span <= MINUTE_MAX_SPAN_MS else Tier.HOUR


def _field_size(size: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag and ``size`` bytes of content."""
    return 1 + (size.bit_length() + 6) // 7 + size if size else 2


def table_digest(batch: HostBatch) -> bytes:
    """A digest of the batch without its snapshots (host identity, series table, unsupported
    list). The serialization is ``host``, ``series``, ``snapshots``, ``unsupported`` in field
    order, so those bytes are the serialized batch minus the snapshots' span: one C-level
    serialisation, no copy. When the layout is not that (unknown fields), a copy is hashed."""
    data = batch.SerializeToString()
    snaps = sum(_field_size(s.ByteSize()) for s in batch.snapshots)
    tail = sum(_field_size(len(u.encode())) for u in batch.unsupported)
    cut = len(data) - snaps - tail
    view = memoryview(data)
    if (
        cut >= 0
        and (snaps == 0 or data[cut] == 0x1A)
        and (tail == 0 or data[len(data) - tail] == 0x22)
    ):
        digest = hashlib.blake2b(view[:cut], digest_size=16)
        digest.update(view[len(data) - tail :])
        return digest.digest()
    shell = HostBatch()
    shell.CopyFrom(batch)
    shell.ClearField("snapshots")
    shell.DiscardUnknownFields()
    return hashlib.blake2b(shell.SerializeToString(), digest_size=16).digest()


def _keys(batch: HostBatch) -> list[Key]:
    return [(sd.metric, tuple((lb.name, lb.value) for lb in sd.labels)) for sd in batch.series]


def _host_values(batch: HostBatch) -> dict[str, Any]:
    h = batch.host
    return {
        "hostname": h.hostname,
        "os": h.os,
        "kernel": h.kernel,
        "arch": h.arch,
        "cpu_model": h.cpu_model,
        "boot_time": h.boot_time,
        "logical_cores": h.logical_cores,
        "memory_bytes": h.memory_bytes,
        "labels": json.dumps({lb.name: lb.value for lb in h.labels}, sort_keys=True),
        "interval_seconds": h.interval_seconds or 5.0,
        "agent_version": h.agent_version,
        "unsupported": json.dumps(list(batch.unsupported)),
    }


def _record(row: Any) -> HostRecord:
    return HostRecord(
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
        first_seen_ms=int(row["first_seen_ms"]),
        last_seen_ms=int(row["last_seen_ms"]),
    )


def _labels_json(labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([list(p) for p in labels], separators=(",", ":"))


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


def _proc_snapshot(data: bytes) -> ProcessSnapshot:
    s = Snapshot()
    s.ParseFromString(data)
    return ProcessSnapshot(
        s.timestamp_ms, [_proc_row(p) for p in s.top_cpu], [_proc_row(p) for p in s.top_memory]
    )


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc) or type(exc).__name__


def _parse_cursor(cursor: str) -> int:
    if not cursor.startswith(_CURSOR_PREFIX) or not cursor[1:].lstrip("-").isdigit():
        raise BadCursorError(f"invalid cursor {cursor!r}")
    return int(cursor[1:])


class TsdbStore:
    """Samples in a TSDB at ``endpoints``; registry and process lists in ``database``. With
    ``owns_database`` the store opens (migrates) and closes the database itself."""

    def __init__(
        self,
        database: db.Database,
        endpoints: Endpoints,
        *,
        owns_database: bool = False,
        retention: Retention | None = None,
        clock: Clock = wall_clock_ms,
        process_interval_ms: int = 30_000,
        timeout_s: float = 10.0,
        max_samples_per_write: int = 20_000,
        write_concurrency: int = 4,
        flush_interval_ms: int = 2_000,
        refresh_interval_ms: int = 5_000,
        lookback_ms: int = 300_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.database = database
        self.endpoints = endpoints
        self.owns_database = owns_database
        self.retention = retention or Retention()
        self.clock = clock
        self.process_interval_ms = process_interval_ms
        self.timeout_s = timeout_s
        self.max_samples_per_write = max_samples_per_write
        self.lookback_ms = lookback_ms
        self.flush_interval_ms = flush_interval_ms
        self.refresh_interval_ms = refresh_interval_ms
        self._transport = transport
        self._writes: GroupWriter[bytes] = GroupWriter(
            self._send_writes, slots=write_concurrency, max_weight=max_samples_per_write
        )
        self._proc_writes: GroupWriter[dict[str, object]] = GroupWriter(
            self._insert_processes, slots=1, max_weight=1000
        )
        self._client: httpx.AsyncClient | None = None
        self._poster: PostClient | None = None
        """Remote writes (``tsdb.http1``); None: with ``_client`` (an injected transport, or
        an environment proxy for the URL)."""
        self._history = BucketReader(lambda params: self._query(self.endpoints.query_range, params))
        self._hosts: dict[str, HostRecord] = {}
        self._tables: dict[str, dict[bytes, SeriesTable]] = {}  # host -> digest -> table
        self._last_proc: dict[str, int] = {}
        self._dirty: dict[str, int] = {}  # host -> last_seen_ms not yet in the database
        self._refreshed = -1e18  # time.monotonic() of the last registry read
        self._reg_locks: dict[str, asyncio.Lock] = {}
        self._refresh_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise StoreClosedError("store is not started")
        return self._client

    async def start(self) -> None:
        if self._client is not None:
            return
        if self.owns_database:
            await self.database.open()
        self._client = httpx.AsyncClient(
            timeout=self.timeout_s,
            transport=self._transport,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        if self._transport is None and not needs_httpx(self.endpoints.write):
            self._poster = PostClient(self.endpoints.write, self.timeout_s)
        await self._refresh(force=True)
        async with self.database.engine.connect() as conn:
            rows = await conn.execute(
                select(schema.processes.c.host_id, func.max(schema.processes.c.ts_ms)).group_by(
                    schema.processes.c.host_id
                )
            )
            self._last_proc = {str(h): int(t) for h, t in rows}
        self._stop.clear()
        self._flusher = asyncio.create_task(self._flush_loop())
        logger.info(
            "tsdb store started: %d hosts, samples at %s", len(self._hosts), self.endpoints.shown
        )

    async def close(self) -> None:
        if self._client is None:
            return
        self._stop.set()
        if self._flusher is not None:
            await self._flusher
            self._flusher = None
        try:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._flush_seen()
            await self._client.aclose()
            if self._poster is not None:
                await self._poster.aclose()
        finally:
            self._client = None
            self._poster = None
            if self.owns_database:
                await self.database.close()

    async def ready(self) -> bool:
        """The database answers, the TSDB takes an (empty) write and answers a query."""
        if self._client is None:
            return False
        try:
            async with self.database.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            probe = await self._client.post(
                self.endpoints.write, content=compress([]), headers=CONTENT_HEADERS, timeout=5
            )
            answer = await self._client.get(self.endpoints.query, params={"query": "1"}, timeout=5)
        except (SQLAlchemyError, OSError, httpx.HTTPError) as exc:
            logger.warning("store not ready: %s", exc)
            return False
        if probe.status_code >= 300 or answer.status_code >= 300:
            logger.warning(
                "store not ready: the TSDB answered write %d, query %d",
                probe.status_code,
                answer.status_code,
            )
            return False
        return True

    async def _flush_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                tick = min(self.flush_interval_ms, self.refresh_interval_ms) / 1000
                await asyncio.wait_for(self._stop.wait(), tick)
            try:
                await self._flush_seen()
            except (SQLAlchemyError, OSError) as exc:  # kept in memory; the next run retries
                logger.warning("tsdb store: cannot save last_seen: %s", exc)
            try:  # here, not in a read: no API request waits for the whole host list
                await self._refresh()
            except (SQLAlchemyError, OSError) as exc:
                logger.warning("tsdb store: cannot read the host registry: %s", exc)

    async def _flush_seen(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        h = schema.hosts
        try:
            async with self.database.engine.begin() as conn:
                await conn.execute(
                    update(h)
                    .where(h.c.host_id == bindparam("h"), h.c.last_seen_ms < bindparam("seen"))
                    .values(last_seen_ms=bindparam("seen")),
                    [{"h": k, "seen": v} for k, v in dirty.items()],
                )
        except BaseException:
            for k, v in dirty.items():
                self._dirty[k] = max(v, self._dirty.get(k, 0))
            raise

    # --- registry ----------------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        return dialect.insert(table)

    async def _refresh(self, *, force: bool = False) -> None:
        """Read the host registry (other replicas' hosts and last_seen) when it is older than
        ``refresh_interval_ms``."""
        if not force and (time.monotonic() - self._refreshed) * 1000 < self.refresh_interval_ms:
            return
        async with self._refresh_lock:
            if not force and (time.monotonic() - self._refreshed) * 1000 < (
                self.refresh_interval_ms
            ):
                return
            async with self.database.engine.connect() as conn:
                rows = (await conn.execute(select(schema.hosts))).mappings().all()
            for row in rows:
                rec = _record(row)
                mine = self._hosts.get(rec.host_id)
                if mine is not None:
                    rec.last_seen_ms = max(rec.last_seen_ms, mine.last_seen_ms)
                self._hosts[rec.host_id] = rec
            self._refreshed = time.monotonic()

    async def _table(self, batch: HostBatch, received_ms: int) -> SeriesTable:
        host_id = batch.host.host_id
        digest = table_digest(batch)
        tables = self._tables.get(host_id)
        table = tables.get(digest) if tables is not None else None
        if table is not None:
            return table
        keys = _keys(batch)
        for metric, labels in keys:
            problem = series_problem(metric, labels)
            if problem is not None:
                raise InvalidRequestError(f"host {host_id!r}: {problem}")
        lock = self._reg_locks.setdefault(host_id, asyncio.Lock())
        async with lock:  # one registration per host at a time; hosts register in parallel
            tables = self._tables.setdefault(host_id, {})
            table = tables.get(digest)
            if table is not None:
                return table
            await self._register(batch, keys, received_ms)
            if len(tables) >= TABLES_PER_HOST:  # a host whose series keep changing
                tables.clear()
            table = tables[digest] = SeriesTable(host_id, keys)
            return table

    async def _register(self, batch: HostBatch, keys: list[Key], received_ms: int) -> None:
        """Create or update the host and insert its new series, in one transaction."""
        host_id = batch.host.host_id
        values = _host_values(batch)
        first = received_ms or min((s.timestamp_ms for s in batch.snapshots), default=0)
        h, s = schema.hosts, schema.series
        upsert = self._insert(h).values(
            host_id=host_id, first_seen_ms=first, last_seen_ms=0, **values
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[h.c.host_id], set_={c: upsert.excluded[c] for c in _HOST_COLUMNS}
        )
        rows = [{"host_id": host_id, "metric": m, "labels": _labels_json(lb)} for m, lb in keys]
        async with self.database.engine.begin() as conn:
            await conn.execute(upsert)
            if rows:
                await conn.execute(self._insert(s).on_conflict_do_nothing(), rows)
            found = (await conn.execute(select(h).where(h.c.host_id == host_id))).mappings().one()
        rec = _record(found)
        mine = self._hosts.get(host_id)
        if mine is not None:
            rec.last_seen_ms = max(rec.last_seen_ms, mine.last_seen_ms)
        self._hosts[host_id] = rec

    # --- ingest ------------------------------------------------------------------------------

    async def ingest(self, request: IngestRequest, received_ms: int) -> IngestResult:
        try:
            parts = [(b, await self._table(b, received_ms)) for b in request.batches]
        except (DBAPIError, OSError) as exc:
            raise StoreUnavailableError(f"the database cannot write: {_reason(exc)}") from exc
        samples = sum(len(s.values) for b in request.batches for s in b.snapshots)
        if samples <= INLINE_SAMPLES:
            chunks = list(write_chunks(parts, self.max_samples_per_write))
        else:  # a large request is encoded in a worker thread: the loop serves others
            chunks = await asyncio.to_thread(list, write_chunks(parts, self.max_samples_per_write))
        procs = self._process_rows(request)
        # both finish before the answer (nothing of the request is still in flight then)
        outcomes = await asyncio.gather(
            self._writes.submit([(raw, n) for n, raw in chunks]),
            self._proc_writes.submit([(row, 1) for row in procs]),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, DBAPIError | OSError):
                raise StoreUnavailableError(
                    f"the database cannot write: {_reason(outcome)}"
                ) from outcome
            if isinstance(outcome, BaseException):
                raise outcome
        for row in procs:
            host = str(row["host_id"])
            ts = row["ts_ms"]
            assert isinstance(ts, int)
            self._last_proc[host] = max(self._last_proc.get(host, 0), ts)
        for batch in request.batches:
            newest = max((s.timestamp_ms for s in batch.snapshots), default=0)
            rec = self._hosts.get(batch.host.host_id)
            if rec is not None and newest > rec.last_seen_ms:
                rec.last_seen_ms = newest
                self._dirty[rec.host_id] = newest
        return IngestResult(sum(n for n, _ in chunks), 0)

    async def _send_writes(self, chunks: list[bytes]) -> list[BaseException | None]:
        """One remote write of the chunks of several requests; when the TSDB refuses it
        (400: e.g. Prometheus' out-of-order samples), each chunk again on its own, so that
        one request's refused samples do not fail the others."""
        error = await self._post(compress(chunks))
        if error is None:
            return [None] * len(chunks)
        if len(chunks) > 1 and isinstance(error, InvalidRequestError):
            return [await self._post(compress([c])) for c in chunks]
        return [error] * len(chunks)

    async def _post(self, body: bytes) -> BaseException | None:
        try:
            if self._poster is not None:
                answer = await self._poster.post(body, CONTENT_HEADERS)
                status, answer_body = answer.status, answer.body
            else:
                resp = await self.client.post(
                    self.endpoints.write, content=body, headers=CONTENT_HEADERS
                )
                status, answer_body = resp.status_code, resp.content
        except (httpx.HTTPError, HTTPError) as exc:
            return StoreUnavailableError(
                f"the TSDB at {self.endpoints.shown} did not take the samples: "
                f"{type(exc).__name__}: {exc}"
            )
        if status < 300:
            return None
        reason = answer_body.decode("utf-8", "replace").strip()[:300]
        if status == 400:  # e.g. Prometheus: out of order, out of bounds
            return InvalidRequestError(
                f"the TSDB refused the samples (HTTP 400): {reason} (see docs/tsdb.md, "
                "de-duplication)"
            )
        return StoreUnavailableError(
            f"the TSDB at {self.endpoints.shown} answered HTTP {status}: {reason}"
        )

    def _process_rows(self, request: IngestRequest) -> list[dict[str, object]]:
        """The top-process lists to keep: at most one per ``process_interval_ms`` per host."""
        rows: list[dict[str, object]] = []
        for batch in request.batches:
            host_id = batch.host.host_id
            last = self._last_proc.get(host_id, -(2**62))
            for snap in sorted(batch.snapshots, key=lambda s: s.timestamp_ms):
                if not (snap.top_cpu or snap.top_memory):
                    continue
                ts = snap.timestamp_ms
                if ts >= last and ts - last < self.process_interval_ms:
                    continue
                kept = Snapshot(timestamp_ms=ts)
                kept.top_cpu.extend(snap.top_cpu)
                kept.top_memory.extend(snap.top_memory)
                rows.append({"host_id": host_id, "ts_ms": ts, "data": kept.SerializeToString()})
                last = max(last, ts)
        return rows

    async def _insert_processes(self, rows: list[dict[str, object]]) -> list[BaseException | None]:
        async with self.database.engine.begin() as conn:
            await conn.execute(self._insert(schema.processes).on_conflict_do_nothing(), rows)
        return [None] * len(rows)

    # --- reads -------------------------------------------------------------------------------

    async def _query(self, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            resp = await self.client.post(url, data=params)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"the TSDB at {self.endpoints.shown} did not answer: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            body = orjson.loads(resp.content)
            return q.result_of(body)
        except (orjson.JSONDecodeError, ValueError) as exc:
            refused = resp.status_code in (400, 422)
            raise (RefusedQueryError if refused else StoreUnavailableError)(
                f"the TSDB at {self.endpoints.shown} answered HTTP {resp.status_code}: "
                f"{str(exc)[:300]}"
            ) from None

    async def hosts(self) -> list[HostRecord]:
        return [self._hosts[k] for k in sorted(self._hosts)]

    async def host(self, host_id: str) -> HostRecord | None:
        rec = self._hosts.get(host_id)
        if rec is None and (time.monotonic() - self._refreshed) > 0.5:
            await self._refresh(force=True)  # registered by another replica just now?
            rec = self._hosts.get(host_id)
        return rec

    async def series(
        self, host_id: str, metric: str | None = None, labels: dict[str, str] | None = None
    ) -> list[SeriesInfo]:
        s = schema.series
        query = select(s.c.id, s.c.metric, s.c.labels).where(s.c.host_id == host_id)
        if metric is not None:
            query = query.where(s.c.metric == metric)
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(s.c.id))).all()
        out: list[SeriesInfo] = []
        for sid, m, text_labels in rows:
            pairs = tuple((str(a), str(b)) for a, b in json.loads(text_labels))
            if labels:
                have = dict(pairs)
                if any(have.get(k) != v for k, v in labels.items()):
                    continue
            out.append(SeriesInfo(int(sid), host_id, str(m), pairs))
        return out

    async def latest(self, host_id: str, metrics: list[str] | None = None) -> list[LatestValue]:
        """The value of every series at the host's newest sample time (``last_seen_ms``), as
        the TSDB's instant query finds it: each series' newest sample within its look-back
        (Prometheus: 5 minutes). ``ts_ms`` is that time for every series."""
        rec = await self.host(host_id)
        if rec is None or rec.last_seen_ms <= 0:
            return []
        at = rec.last_seen_ms
        params = {"query": q.selector(host_id, metrics), "time": q.seconds(at)}
        params["step"] = q.duration(self.lookback_ms)  # VictoriaMetrics' look-back
        out: list[LatestValue] = []
        for item in await self._query(self.endpoints.query, params):
            key, labels = q.series_key(item["metric"])
            out.append(LatestValue(key, labels, at, q.number(item["value"][1])))
        out.sort(key=lambda v: (v.metric, v.labels))
        return out

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
        chosen = tier or pick_tier(start_ms, end_ms, step_ms)
        native = _TIER_STEP[chosen]
        step = max(step_ms or native, native, 1)
        lo = start_ms if cursor is None else max(start_ms, _parse_cursor(cursor))
        rec = await self.host(host_id)
        known = await self.series(host_id, metric, labels)
        interval_ms = max(1, int((rec.interval_seconds if rec else 5.0) * 1000))
        reported = interval_ms if step == 1 else step
        if rec is None or not known:
            return RangeResult(chosen, reported, [])
        sel = q.selector(host_id, [metric], labels)
        if step == 1:
            found, next_cursor = await self._raw(sel, metric, lo, end_ms, limit, interval_ms)
        else:
            own_rollup = any(n == ROLLUP_LABEL for s in known for n, _ in s.labels)
            found, next_cursor = await self._history.read(
                sel, metric, lo, end_ms, step, agg, limit, may_combine=not own_rollup
            )
        out = [SeriesPoints(s.metric, s.labels, found.get((s.metric, s.labels), [])) for s in known]
        return RangeResult(chosen, reported, out, next_cursor)

    async def _raw(
        self, sel: str, metric: str, lo: int, end_ms: int, limit: int, interval_ms: int
    ) -> tuple[dict[Key, list[Point]], str | None]:
        """Raw samples in ``[lo, end_ms]``: a range selector evaluated at ``end_ms``. A page
        asks for about ``limit`` samples' worth of time (``limit`` agent intervals), so a long
        raw range is read page by page rather than whole."""
        window_end = end_ms
        if limit > 0 and end_ms - lo >= limit * interval_ms:
            window_end = lo + limit * interval_ms - 1
        cursor_after = window_end + 1 if window_end < end_ms else None
        end_ms = window_end
        params = {"query": f"{sel}[{q.duration(end_ms - lo + 1)}]", "time": q.seconds(end_ms)}
        found: dict[Key, list[Point]] = {}
        stamps: set[int] = set()
        for item in await self._query(self.endpoints.query, params):
            points = []
            for t, v in item.get("values", []):
                ts = round(float(t) * 1000)
                if lo <= ts <= end_ms:
                    x = q.number(v)
                    points.append(Point(ts, x, x, x, 1))
                    stamps.add(ts)
            found[q.series_key(item["metric"], metric)] = points
        next_cursor = None if cursor_after is None else f"{_CURSOR_PREFIX}{cursor_after}"
        if len(stamps) > limit > 0:
            cut = sorted(stamps)[limit]
            for key, points in found.items():
                found[key] = [p for p in points if p.ts_ms < cut]
            next_cursor = f"{_CURSOR_PREFIX}{cut}"
        return found, next_cursor

    async def processes(self, host_id: str, at_ms: int | None = None) -> ProcessSnapshot | None:
        p = schema.processes
        query = select(p.c.data).where(p.c.host_id == host_id)
        if at_ms is not None:
            query = query.where(p.c.ts_ms <= at_ms)
        async with self.database.engine.connect() as conn:
            data = await conn.scalar(query.order_by(p.c.ts_ms.desc()).limit(1))
        return None if data is None else _proc_snapshot(bytes(data))

    async def process_history(
        self, host_id: str, start_ms: int, end_ms: int
    ) -> list[ProcessSnapshot]:
        p = schema.processes
        query = (
            select(p.c.data)
            .where(p.c.host_id == host_id, p.c.ts_ms >= start_ms, p.c.ts_ms <= end_ms)
            .order_by(p.c.ts_ms)
        )
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_proc_snapshot(bytes(r[0])) for r in rows]

    # --- maintenance -------------------------------------------------------------------------

    async def maintain(self, now_ms: int) -> None:
        """Save last_seen and drop process lists older than ``retention.raw``. The samples'
        retention is the TSDB's own (``-retentionPeriod``, ``--storage.tsdb.retention.time``)."""
        await self._flush_seen()
        async with self.database.engine.begin() as conn:
            await conn.execute(
                delete(schema.processes).where(
                    schema.processes.c.ts_ms < now_ms - self.retention.raw * 1000
                )
            )

    async def stats(self) -> StoreStats:
        """Hosts and series from the registry; the sample counts and bytes are the TSDB's and
        are reported as 0 here (ask the TSDB: ``/api/v1/status/tsdb``)."""
        async with self.database.engine.connect() as conn:
            hosts = await conn.scalar(select(func.count()).select_from(schema.hosts))
            series = await conn.scalar(select(func.count()).select_from(schema.series))
        return StoreStats(int(hosts or 0), int(series or 0), 0, 0, 0, 0)


__all__: Sequence[str] = ("TsdbStore", "pick_tier", "table_digest")
