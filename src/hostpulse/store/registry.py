"""Hosts and series: created on first sight, cached by the digest of a batch's host and series
table, so the steady state of ingest does no SQL here.

New hosts arrive in crowds (a fleet's agents start together; a server restarts with 10,000
agents waiting), so registrations are coalesced: whoever holds the registration lock
registers every batch queued so far in one transaction.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection

from hostpulse.protocol import HostBatch
from hostpulse.store.head import HostHead, IntP, SeriesCol
from hostpulse.store.quantize import resolution_k
from hostpulse.store.types import HostRecord

if TYPE_CHECKING:
    from hostpulse.store.prepare import Prepared, PreparedBatch
    from hostpulse.store.state import StoreState

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


@functools.lru_cache(maxsize=65536)
def labels_json(labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([list(p) for p in labels], separators=(",", ":"))


@functools.lru_cache(maxsize=65536)
def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(b)) for a, b in json.loads(text))


def _host_values(batch: HostBatch) -> tuple[object, ...]:
    h = batch.host
    return (
        h.hostname,
        h.os,
        h.kernel,
        h.arch,
        h.cpu_model,
        h.boot_time,
        h.logical_cores,
        h.memory_bytes,
        json.dumps({lb.name: lb.value for lb in h.labels}, sort_keys=True),
        h.interval_seconds or 5.0,
        h.agent_version,
        json.dumps(list(batch.unsupported)),
    )


def _record_values(rec: HostRecord) -> tuple[object, ...]:
    return (
        rec.hostname,
        rec.os,
        rec.kernel,
        rec.arch,
        rec.cpu_model,
        rec.boot_time,
        rec.logical_cores,
        rec.memory_bytes,
        json.dumps(rec.labels, sort_keys=True),
        rec.interval_seconds,
        rec.agent_version,
        json.dumps(rec.unsupported),
    )


Key = tuple[str, tuple[tuple[str, str], ...]]


def _keys(batch: HostBatch) -> list[Key]:
    return [(sd.metric, tuple([(lb.name, lb.value) for lb in sd.labels])) for sd in batch.series]


def _meta_digest(batch: HostBatch) -> bytes:
    meta = hashlib.blake2b(batch.host.SerializeToString(), digest_size=16)
    for u in batch.unsupported:
        meta.update(b"\x00" + u.encode())
    return meta.digest()


def _update_record(rec: HostRecord, batch: HostBatch) -> None:
    h = batch.host
    rec.hostname, rec.os, rec.kernel, rec.arch = h.hostname, h.os, h.kernel, h.arch
    rec.cpu_model, rec.boot_time = h.cpu_model, h.boot_time
    rec.logical_cores, rec.memory_bytes = h.logical_cores, h.memory_bytes
    rec.labels = {lb.name: lb.value for lb in h.labels}
    rec.interval_seconds = h.interval_seconds or 5.0
    rec.agent_version = h.agent_version
    rec.unsupported = list(batch.unsupported)


@dataclass(slots=True)
class _NewHost:
    key: int
    first: int  # first_seen_ms
    batch: PreparedBatch  # the last of the host's jobs: its metadata is stored
    digest: bytes


@dataclass(slots=True)
class _Plan:
    """What one registration transaction writes, put into the head once it is committed."""

    next_key: int
    new: dict[str, _NewHost] = field(default_factory=dict)
    meta: dict[int, tuple[HostHead, HostBatch, bytes]] = field(default_factory=dict)
    """host key -> (head, batch, metadata digest) of known hosts whose metadata digest changed"""
    series: dict[int, dict[Key, int]] = field(default_factory=dict)
    """host key -> the series to create (key -> id), in column order"""
    whole: dict[int, list[Key]] = field(default_factory=dict)
    """host key -> the table that made all its columns (a new host's first table)"""


@functools.lru_cache(maxsize=64)
def _identity(n: int) -> IntP:
    """0..n-1, shared (read only): the columns of a host registered with one table."""
    cols = np.arange(n, dtype=np.intp)
    cols.flags.writeable = False
    return cols


@dataclass(slots=True)
class _Job:
    batch: PreparedBatch
    received_ms: int
    future: asyncio.Future[IntP]


class Registrar:
    """Creates hosts and series in the database and in the head; owns the queue of pending
    registrations."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._lock = asyncio.Lock()
        self._jobs: list[_Job] = []
        self._keys_cache: dict[bytes, list[Key]] = {}

    def add_col(self, head: HostHead, sid: int, metric: str, labels_text: str) -> int:
        kmax, lossy = resolution_k(metric)
        return head.add_column(SeriesCol(sid, metric, parse_labels(labels_text), kmax, lossy))

    async def register(self, prep: Prepared, received_ms: int) -> list[IntP]:
        """Per batch the column of every entry of its series table; hosts and series are
        created or updated first when new."""
        colmaps: list[IntP] = []
        heads = self.state.heads
        for pb in prep.batches:
            head = heads.get(pb.batch.host.host_id)
            cols = head.tables.get(pb.digest) if head is not None else None
            if cols is None:
                cols = await self._register_slow(pb, received_ms)
            colmaps.append(cols)
        return colmaps

    async def _register_slow(self, pb: PreparedBatch, received_ms: int) -> IntP:
        job = _Job(pb, received_ms, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        async with self._lock:
            if not job.future.done():
                jobs, self._jobs = self._jobs, []
                try:
                    await self._register_all(jobs)
                except BaseException as exc:  # every waiter gets the error, then it propagates
                    for j in jobs:
                        if not j.future.done():
                            j.future.set_exception(exc)
        return await job.future

    async def _register_all(self, jobs: list[_Job]) -> None:
        tables = [self._table_keys(job) for job in jobs]
        whole: dict[int, list[Key]] = {}
        if not all(self._known(job) for job in jobs):  # e.g. WAL replay after a restart: no SQL
            async with self.state.engine.begin() as conn:
                plan = await self._write(conn, jobs, tables)
            self._apply(plan)  # the head learns of hosts and series once they are committed
            whole = plan.whole
        heads = self.state.heads
        for job, keys in zip(jobs, tables, strict=True):
            head = heads[job.batch.batch.host.host_id]
            if whole.get(head.key) is keys:  # the host's first table: its columns 0..n-1
                cols = _identity(len(keys))
            else:
                index = head.key_index()
                cols = np.fromiter((index[k] for k in keys), dtype=np.intp, count=len(keys))
            if len(head.tables) >= 64:  # a host whose metadata keeps changing
                head.tables.clear()
            head.tables[job.batch.digest] = cols
            job.future.set_result(cols)

    def _known(self, job: _Job) -> bool:
        """True when the host and all its series exist with these values already."""
        batch = job.batch.batch
        head = self.state.heads.get(batch.host.host_id)
        if head is None or _host_values(batch) != _record_values(head.record):
            return False
        known = head.known_keys()
        return all(k in known for k in self._table_keys(job))

    def _table_keys(self, job: _Job) -> list[Key]:
        keys = self._keys_cache.get(job.batch.table_digest)
        if keys is None:
            if len(self._keys_cache) >= 4096:
                self._keys_cache.clear()
            keys = self._keys_cache[job.batch.table_digest] = _keys(job.batch.batch)
        return keys

    async def _write(
        self, conn: AsyncConnection, jobs: list[_Job], tables: list[list[Key]]
    ) -> _Plan:
        """Write the jobs' new hosts, changed host metadata and new series in a few statements
        for all of them (a statement per host or series cost a round trip to the database
        thread each, which dominated the first contact of a fleet). Ids are given here, from
        the largest in the tables (this transaction is the only writer of both), so nothing
        is read back. Jobs are taken in order: the last one of a host sets its metadata."""
        found = await conn.exec_driver_sql(
            "SELECT (SELECT max(id) FROM ts_hosts), (SELECT max(id) FROM ts_series)"
        )
        top_host, top_series = cast("tuple[int | None, int | None]", found.one())
        plan = _Plan((top_host or 0) + 1)
        next_sid = (top_series or 0) + 1
        heads = self.state.heads
        for job, keys in zip(jobs, tables, strict=True):
            pb = job.batch
            batch = pb.batch
            host_id = batch.host.host_id
            head = heads.get(host_id)
            new = plan.new.get(host_id)
            if head is None and new is None:
                first = job.received_ms or min((s.ts for s in pb.snapshots), default=0)
                new = plan.new[host_id] = _NewHost(plan.next_key, first, pb, _meta_digest(batch))
                plan.next_key += 1
            elif new is not None:
                new.batch, new.digest = pb, _meta_digest(batch)
            else:
                assert head is not None
                digest = _meta_digest(batch)
                if head.meta_digest != digest:
                    plan.meta[head.key] = (head, batch, digest)
            key = new.key if new is not None else cast("HostHead", head).key
            planned = plan.series.setdefault(key, {})
            known = head.known_keys() if head is not None else None
            if not known and not planned:  # a new host's first table: every series is new
                fresh = dict(zip(keys, range(next_sid, next_sid + len(keys)), strict=True))
                if len(fresh) == len(keys):
                    planned.update(fresh)
                    plan.whole[key] = keys
                    next_sid += len(keys)
                    continue
            for k in keys:
                if (known is None or k not in known) and k not in planned:
                    planned[k] = next_sid
                    next_sid += 1
        if plan.new:
            await conn.exec_driver_sql(
                f"INSERT INTO ts_hosts (id, host_id, first_seen_ms, last_seen_ms, "
                f"{', '.join(_HOST_COLUMNS)}) VALUES (?, ?, ?, 0, {', '.join('?' * 12)})",
                [(n.key, h, n.first, *_host_values(n.batch.batch)) for h, n in plan.new.items()],
            )
        changed: list[tuple[object, ...]] = []
        for key, (head, batch, _) in plan.meta.items():
            values = _host_values(batch)
            if values != _record_values(head.record):
                changed.append((*values, key))
        if changed:
            await conn.exec_driver_sql(
                f"UPDATE ts_hosts SET {', '.join(f'{c} = ?' for c in _HOST_COLUMNS)} WHERE id = ?",
                changed,
            )
        rows = [
            (sid, key, metric, labels_json(labels))
            for key, planned in plan.series.items()
            for (metric, labels), sid in planned.items()
        ]
        if rows:
            done = await conn.exec_driver_sql(
                "INSERT OR IGNORE INTO ts_series (id, host_key, metric, labels) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            if done.rowcount != len(rows):  # the head did not know a stored series
                await self._read_back(conn, plan)
        return plan

    async def _read_back(self, conn: AsyncConnection, plan: _Plan) -> None:
        """The ids the table has for the planned series of ``plan`` (when some existed)."""
        hosts = sorted(plan.series)
        for lo in range(0, len(hosts), 500):
            chunk = hosts[lo : lo + 500]
            found = await conn.exec_driver_sql(
                "SELECT id, host_key, metric, labels FROM ts_series WHERE host_key IN "
                f"({', '.join('?' * len(chunk))})",
                tuple(chunk),
            )
            for sid, key, metric, text in cast("list[tuple[int, int, str, str]]", found.all()):
                planned = plan.series[key]
                k = (metric, parse_labels(text))
                if k in planned:
                    planned[k] = sid

    def _apply(self, plan: _Plan) -> None:
        """Put a committed ``plan`` into the head."""
        heads, by_key = self.state.heads, self.state.by_key
        for host_id, n in plan.new.items():
            head = HostHead(n.key, HostRecord(host_id=host_id, hostname=""))
            head.record.first_seen_ms = n.first
            head.latest_loaded = True
            _update_record(head.record, n.batch.batch)
            head.meta_digest = n.digest
            heads[host_id] = head
            by_key[n.key] = head
        for head, batch, digest in plan.meta.values():
            _update_record(head.record, batch)
            head.meta_digest = digest
        for key, planned in plan.series.items():
            if planned:
                by_key[key].add_columns(
                    planned,
                    [
                        SeriesCol(sid, metric, labels, *resolution_k(metric))
                        for (metric, labels), sid in planned.items()
                    ],
                )
