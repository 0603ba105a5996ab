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
from dataclasses import dataclass
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
        results: list[tuple[_Job, HostHead, list[Key]]] = []
        if all(self._known(job) for job in jobs):  # e.g. WAL replay after a restart: no SQL
            for job in jobs:
                head = self.state.heads[job.batch.batch.host.host_id]
                results.append((job, head, self._table_keys(job)))
        else:
            async with self.state.engine.begin() as conn:
                await self._upsert_hosts(conn, jobs)
                for job in jobs:
                    head = self.state.heads[job.batch.batch.host.host_id]
                    results.append((job, head, self._table_keys(job)))
                await self._insert_series(conn, results)
        for job, head, keys in results:
            index = head.key_index()
            cols = np.array([index[k] for k in keys], dtype=np.intp)
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

    async def _upsert_hosts(self, conn: AsyncConnection, jobs: list[_Job]) -> None:
        """Create the jobs' new hosts and update the ones whose metadata changed, in a few
        statements for all of them (one statement per host cost a round trip to the database
        thread each, which dominated the first contact of a fleet on a busy machine). Jobs
        are taken in order: the last one of a host sets its metadata."""
        heads = self.state.heads
        new: dict[str, tuple[int, PreparedBatch, bytes]] = {}  # host -> first seen, last job
        changed: dict[int, tuple[object, ...]] = {}  # host key -> its newest values
        for job in jobs:
            batch = job.batch.batch
            host_id = batch.host.host_id
            digest = _meta_digest(batch)
            head = heads.get(host_id)
            if head is None:
                first = (
                    new[host_id][0]
                    if host_id in new
                    else job.received_ms or min((s.ts for s in job.batch.snapshots), default=0)
                )
                new[host_id] = (first, job.batch, digest)
                continue
            if head.meta_digest == digest:
                continue
            values = _host_values(batch)
            if values != _record_values(head.record):
                changed[head.key] = values
                _update_record(head.record, batch)
            head.meta_digest = digest
        if new:
            await conn.exec_driver_sql(
                f"INSERT INTO ts_hosts (host_id, first_seen_ms, last_seen_ms, "
                f"{', '.join(_HOST_COLUMNS)}) VALUES (?, ?, 0, {', '.join('?' * 12)})",
                [(h, first, *_host_values(pb.batch)) for h, (first, pb, _) in new.items()],
            )
            ids: dict[str, int] = {}
            names = list(new)
            for lo in range(0, len(names), 500):
                chunk = names[lo : lo + 500]
                marks = ", ".join("?" * len(chunk))
                rows = await conn.exec_driver_sql(
                    f"SELECT id, host_id FROM ts_hosts WHERE host_id IN ({marks})", tuple(chunk)
                )
                ids.update((h, k) for k, h in cast("list[tuple[int, str]]", rows.all()))
            for host_id, (first, pb, digest) in new.items():
                head = HostHead(ids[host_id], HostRecord(host_id=host_id, hostname=""))
                head.record.first_seen_ms = first
                head.latest_loaded = True
                _update_record(head.record, pb.batch)
                head.meta_digest = digest
                heads[host_id] = head
                self.state.by_key[head.key] = head
        if changed:
            await conn.exec_driver_sql(
                f"UPDATE ts_hosts SET {', '.join(f'{c} = ?' for c in _HOST_COLUMNS)} WHERE id = ?",
                [(*values, key) for key, values in changed.items()],
            )

    async def _insert_series(
        self,
        conn: AsyncConnection,
        results: list[tuple[_Job, HostHead, list[Key]]],
    ) -> None:
        missing: dict[tuple[int, str, str], None] = {}
        for _job, head, keys in results:
            known = head.known_keys()
            for metric, labels in keys:
                if (metric, labels) not in known:
                    missing[(head.key, metric, labels_json(labels))] = None
        if not missing:
            return
        await conn.exec_driver_sql(
            "INSERT OR IGNORE INTO ts_series (host_key, metric, labels) VALUES (?, ?, ?)",
            list(missing),
        )
        hosts = sorted({k for k, _, _ in missing})
        for lo in range(0, len(hosts), 500):
            chunk = hosts[lo : lo + 500]
            rows = await conn.exec_driver_sql(
                "SELECT id, host_key, metric, labels FROM ts_series WHERE host_key IN "
                f"({', '.join('?' * len(chunk))}) ORDER BY id",
                tuple(chunk),
            )
            found = cast("list[tuple[int, int, str, str]]", rows.all())
            for sid, key, metric, text in found:
                head = self.state.by_key[key]
                if sid not in head.col_of:
                    self.add_col(head, sid, metric, text)
