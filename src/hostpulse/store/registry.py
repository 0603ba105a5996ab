"""Hosts and series: created on first sight, cached by the digest of a batch's host and series
table, so the steady state of ingest does no SQL here.

New hosts arrive in crowds (a fleet's agents start together; a server restarts with 10,000
agents waiting). A new host or series is created in the head at once, with an id the registrar
gives (past the largest in the database), and written to the database behind the request, with
every other one created meanwhile, in one transaction: a request does not wait for it. What
makes that safe is the WAL: the request's record, fsynced before it is acknowledged, holds its
series table, so replay after a crash creates whatever the database lacks; and whatever refers
to the ids in the database (compaction writes blocks under them) first ``flush``es.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import logging
import sqlite3
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection

from hostpulse.protocol import HostBatch
from hostpulse.store.head import HostHead, IntP, Key, SeriesCol
from hostpulse.store.prepare import IDENTITY_MAX, identity, table_keys
from hostpulse.store.quantize import resolution_k
from hostpulse.store.types import HostRecord

logger = logging.getLogger(__name__)

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


def _labels_text(labels: dict[str, str]) -> str:
    """``json.dumps(labels, sort_keys=True)``, the same text: with any keyword argument
    ``json.dumps`` builds a new (pure Python) encoder per call, a sorted copy goes through
    the shared C one (a fleet's first contact wrote a host row per host)."""
    return json.dumps(dict(sorted(labels.items())))


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
        _labels_text({lb.name: lb.value for lb in h.labels}),
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
        _labels_text(rec.labels),
        rec.interval_seconds,
        rec.agent_version,
        json.dumps(rec.unsupported),
    )


_SeriesRun = tuple[int, int, list[tuple[str, str]]]
"""Series rows not yet written: the first series id, the host key, then (metric, labels
JSON) per series, ids counting up from the first. A new host's table is one run (its rows
shared with every host of the same table), so first contact allocates no row per series."""


class _Table:
    """What registering a series table needs beyond its keys, derived once per table (hosts
    of one kind share it): per entry the ``SeriesCol`` fields but the id, and the labels as
    stored in ``ts_series``. A first contact of 1,000 hosts used to look these up per series
    per host (``resolution_k``, ``labels_json``: 164,000 cache lookups, hashing nested tuples
    each time) and queue a row tuple per series; with the table's rows queued once per host
    (``_SeriesRun``) ``_register`` of a new host took 236-482 us instead of 398-612 (7 runs
    each on the loaded machine). Most of the rest is allocation: a ``SeriesCol`` per series."""

    __slots__ = ("cols", "keys", "rows")

    def __init__(self, keys: list[Key]) -> None:
        self.keys = keys
        self.cols = [(m, lab, *resolution_k(m)) for m, lab in keys]
        self.rows = [(m, labels_json(lab)) for m, lab in keys]


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


_SERIES_PER_STATEMENT = 2000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 249
"""Series rows of one INSERT, 4 bound parameters each (SQLite allows 32,766 parameters since
3.32, 999 before). Not executemany: that steps every row with the interpreter lock given up
and taken back, and while the event loop was busy with other requests each row waited for
it (first contact of 1,000 hosts: ~10 % more CPU and ~20 % more wall time)."""


def _statement_sizes(n: int, per: int = _SERIES_PER_STATEMENT) -> list[int]:
    """The row counts of the INSERTs that write ``n`` series rows: ``per`` at a time, the rest
    in powers of two. SQLite compiles a statement once per text (the driver keeps the compiled
    ones), so a handful of sizes is compiled once each; a statement of the rest's exact size
    was a new text nearly every time, compiled for each flush (a third of the SQLite work of
    a fleet's first contact)."""
    sizes = [per] * (n // per)
    rest = n % per
    size = 1 << (per.bit_length() - 1)
    while rest:
        if rest >= size:
            sizes.append(size)
            rest -= size
        size >>= 1
    return sizes


@functools.lru_cache(maxsize=32)
def _insert_series(rows: int) -> str:
    return "INSERT INTO ts_series (id, host_key, metric, labels) VALUES " + ", ".join(
        ["(?, ?, ?, ?)"] * rows
    )


class Registrar:
    """Creates hosts and series in the head at once and in the database soon after; owns the
    ids (the next host key and series id) and the rows not yet written."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._keys_cache: dict[bytes, _Table] = {}
        self._next_key = 0  # 0: not counted from the head yet
        self._next_sid = 0
        self._hosts: list[tuple[object, ...]] = []  # INSERT INTO ts_hosts
        self._updates: list[tuple[object, ...]] = []  # UPDATE ts_hosts (values..., id)
        self._series: list[_SeriesRun] = []  # INSERT INTO ts_series
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None

    def add_col(self, head: HostHead, sid: int, metric: str, labels_text: str) -> int:
        kmax, lossy = resolution_k(metric)
        return head.add_column(SeriesCol(sid, metric, parse_labels(labels_text), kmax, lossy))

    async def register(self, prep: Prepared, received_ms: int) -> list[IntP]:
        """Per batch the column of every entry of its series table; hosts and series are
        created or updated first when new. Nothing here waits for the database: the rows are
        written by a background task (``flush`` waits for them)."""
        colmaps: list[IntP] = []
        heads = self.state.heads
        for pb in prep.batches:
            head = heads.get(pb.batch.host.host_id)
            cols = head.tables.get(pb.digest) if head is not None else None
            if cols is None:
                cols = self._register(pb, received_ms)
            colmaps.append(cols)
        pending = self._hosts or self._updates or self._series
        if pending and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_behind(), name="registrations")
        return colmaps

    def _register(self, pb: PreparedBatch, received_ms: int) -> IntP:
        batch = pb.batch
        host_id = batch.host.host_id
        table = self._table(pb)
        keys = table.keys
        head = self.state.heads.get(host_id)
        if head is None:
            head = self._new_host(pb, received_ms)
        else:
            digest = _meta_digest(batch)
            if head.meta_digest != digest:
                values = _host_values(batch)
                if values != _record_values(head.record):
                    self._updates.append((*values, head.key))
                    _update_record(head.record, batch)
                head.meta_digest = digest
        known = head.known_keys()
        whole = False
        planned: dict[Key, int] = {}
        if any(k not in known for k in keys):
            self._count()
            sid = self._next_sid
            if not known:  # a new host's first table: every series is new
                planned = dict(zip(keys, range(sid, sid + len(keys)), strict=True))
                whole = len(planned) == len(keys)
            key = head.key
            if whole:  # the common first contact: columns and rows straight from the table
                ids = range(sid, sid + len(keys))
                head.add_columns(
                    planned,
                    [SeriesCol(i, *c) for i, c in zip(ids, table.cols, strict=True)],
                )
                self._series.append((sid, key, table.rows))
                self._next_sid += len(keys)
            else:
                planned = {}
                for k in keys:
                    if k not in known and k not in planned:
                        planned[k] = sid
                        sid += 1
                self._next_sid += len(planned)
                head.add_columns(
                    planned,
                    [
                        SeriesCol(i, metric, labels, *resolution_k(metric))
                        for (metric, labels), i in planned.items()
                    ],
                )
                rows = [(m, labels_json(lab)) for m, lab in planned]
                self._series += [(i, key, [r]) for i, r in zip(planned.values(), rows, strict=True)]
        if whole:
            cols = identity(len(keys))
        else:
            index = head.key_index()
            cols = np.fromiter((index[k] for k in keys), dtype=np.intp, count=len(keys))
            if len(keys) <= IDENTITY_MAX and np.array_equal(cols, identity(len(keys))):
                cols = identity(len(keys))  # the columns in table order (shared)
        if len(head.tables) >= 64:  # a host whose metadata keeps changing
            head.tables.clear()
        head.tables[pb.digest] = cols
        return cols

    def _new_host(self, pb: PreparedBatch, received_ms: int) -> HostHead:
        self._count()
        key = self._next_key
        self._next_key += 1
        batch = pb.batch
        host_id = batch.host.host_id
        first = received_ms or min((s.ts for s in pb.snapshots), default=0)
        head = HostHead(key, HostRecord(host_id=host_id, hostname=""))
        head.record.first_seen_ms = first
        head.latest_loaded = True
        _update_record(head.record, batch)
        head.meta_digest = _meta_digest(batch)
        self.state.heads[host_id] = head
        self.state.by_key[key] = head
        self._hosts.append((key, host_id, first, 0, *_host_values(batch)))
        return head

    def _count(self) -> None:
        """The next ids, once: past the largest in the head, which holds every host and
        series of the database (loaded at start) and every one created since."""
        if self._next_key:
            return
        st = self.state
        self._next_key = max(st.by_key, default=0) + 1
        self._next_sid = (
            max((c.series_id for h in st.heads.values() for c in h.columns), default=0) + 1
        )

    def _table(self, pb: PreparedBatch) -> _Table:
        table = self._keys_cache.get(pb.table_digest)
        if table is None:
            if len(self._keys_cache) >= 4096:
                self._keys_cache.clear()
            table = self._keys_cache[pb.table_digest] = _Table(table_keys(pb.batch))
        return table

    async def _write_behind(self) -> None:
        try:
            await self.flush()
        except Exception:  # kept queued: the next registration or maintenance retries
            logger.exception("writing new hosts and series to the database failed")

    async def flush(self) -> None:
        """Write every host and series created so far, in a few statements per transaction
        (a statement per host or series cost a round trip to the database thread each, which
        dominated the first contact of a fleet). Anything that refers to their ids in the
        database (compaction, closing) calls this first; a request does not wait for it: its
        record in the WAL holds its series table, and replay after a crash creates what the
        database lacks, with ids past the largest stored."""
        async with self._write_lock:
            while self._hosts or self._updates or self._series:
                hosts, updates, series = self._hosts, self._updates, self._series
                self._hosts, self._updates, self._series = [], [], []
                try:
                    async with self.state.engine.begin() as conn:
                        await self._write(conn, hosts, updates, series)
                except BaseException:
                    self._hosts[:0], self._updates[:0], self._series[:0] = hosts, updates, series
                    raise

    @staticmethod
    async def _write(
        conn: AsyncConnection,
        hosts: list[tuple[object, ...]],
        updates: list[tuple[object, ...]],
        runs: list[_SeriesRun],
    ) -> None:
        if hosts:
            await conn.exec_driver_sql(
                f"INSERT INTO ts_hosts (id, host_id, first_seen_ms, last_seen_ms, "
                f"{', '.join(_HOST_COLUMNS)}) VALUES (?, ?, ?, ?, {', '.join('?' * 12)})",
                hosts,
            )
        if updates:
            await conn.exec_driver_sql(
                f"UPDATE ts_hosts SET {', '.join(f'{c} = ?' for c in _HOST_COLUMNS)} WHERE id = ?",
                updates,
            )
        series = [
            (i, key, m, lab) for sid, key, rows in runs for i, (m, lab) in enumerate(rows, sid)
        ]
        lo = 0
        for size in _statement_sizes(len(series)):
            chunk = series[lo : lo + size]
            lo += size
            await conn.exec_driver_sql(
                _insert_series(size), tuple(itertools.chain.from_iterable(chunk))
            )
