"""Ingest: decode, validate (all or nothing), then hand the request to the store; the series
and hosts each request may add are counted here against their bounds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.ingest import worker
from hostpulse.server.ingest.admission import Admission, Overloaded
from hostpulse.server.ingest.checker import Checked, Checker
from hostpulse.server.ingest.decode import check_counts, decode
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.server.ingest.pool import IngestWorkers, WorkerDied
from hostpulse.server.ingest.validate import SeriesKey, series_keys
from hostpulse.server.ingest.wire import batch_bytes
from hostpulse.store.base import Store
from hostpulse.store.engine import SQLiteStore
from hostpulse.store.exceptions import (
    HeadFullError,
    InvalidRequestError,
    StoreUnavailableError,
)
from hostpulse.store.prepare import Prepared, prepare_async, unpack
from hostpulse.store.types import IngestResult

logger = logging.getLogger(__name__)

Listener = Callable[[IngestRequest, Sequence[bytes]], None]
"""Called with each request once the store has it, and with each batch's series signature
(``series_signature``: equal signatures mean the same host identity and series table, so a
listener can cache what it derives from the table); must not block."""


_NEVER = -(2**62)
_NO_TABLE = bytes(16)


class SeriesRegistry:
    """The series each host has reported lately, to enforce ``max_series_per_host`` on active
    series: a series counts while it has a sample, or was declared in a new series table,
    within ``window_ms`` (``series_active_window``); one that stopped reporting (a removed
    container's) falls out, so a host whose containers come and go is not refused for ever.

    Per host: series -> the newest time it was known to be active (new tables set theirs to
    now). Only a table with a series that is new (or was inactive) is counted: when the series
    the store has ever had for the host, with the table's, are within the limit, that is
    enough (no I/O); else the newest sample of every series is read from the store (a host
    that keeps sending one table is not looked at here, so this is how its series are known to
    be active) and only the active ones count."""

    def __init__(self, store: Store, limit: int, window_ms: int = 3_600_000) -> None:
        self._store = store
        self._limit = limit
        self._window = window_ms
        self._seen: dict[str, dict[SeriesKey, int]] = {}

    async def reserve(
        self, host_id: str, keys: list[SeriesKey], now_ms: int
    ) -> dict[SeriesKey, int | None]:
        """Mark ``keys`` active now; IngestError(422) when the host would have more active
        series than the limit. Returns what to hand to ``release`` if the request is not
        stored. The last count and the marking have no await between them, so concurrent
        requests cannot both pass the limit."""
        seen = self._seen.get(host_id)
        if seen is None:  # first sight since the start: a new host, or a known one's restart
            marks = dict.fromkeys(keys, now_ms)
            ever = {(s.metric, s.labels) for s in await self._store.series(host_id)}
            # (no await between this check and the marking)
            if len(ever | marks.keys()) <= self._limit and host_id not in self._seen:
                self._seen[host_id] = marks
                return dict.fromkeys(keys)
            seen = self._seen.setdefault(host_id, {})
        horizon = now_ms - self._window
        if any(seen.get(k, _NEVER) < horizon for k in keys):  # a series (re)appears
            ever = {(s.metric, s.labels) for s in await self._store.series(host_id)}
            wanted = set(keys)
            if len(ever | wanted | seen.keys()) > self._limit:  # count the active ones
                newest = {(v.metric, v.labels): v.ts_ms for v in await self._store.latest(host_id)}
                for k, t in newest.items():
                    if t > seen.get(k, _NEVER):
                        seen[k] = t
                for k in [k for k, t in seen.items() if t < horizon]:
                    del seen[k]
                total = len(seen.keys() | wanted)
                if total > self._limit:
                    raise IngestError(
                        422,
                        f"host {host_id!r} would have {total} series active (reported within "
                        f"the last {self._window // 1000} s), more than the limit of "
                        f"{self._limit} (max_series_per_host; series_active_window)",
                    )
        before = {k: seen.get(k) for k in keys}
        for k in keys:
            seen[k] = max(seen.get(k, _NEVER), now_ms)
        return before

    def release(self, host_id: str, before: dict[SeriesKey, int | None]) -> None:
        seen = self._seen.get(host_id)
        if seen is None:
            return
        for k, t in before.items():
            if t is None:
                seen.pop(k, None)
            else:
                seen[k] = t


INLINE_BODY_BYTES = 16 * 1024
INLINE_RAW_BYTES = 128 * 1024
INLINE_SNAPSHOTS = 32
INLINE_SERIES = 1000
"""Without ingest workers, a body within all of these is decoded and checked on the event
loop (well under a millisecond); any other in a worker thread."""


class IngestService:
    """Validates requests and writes them to the store. A (host, series table) validated and
    stored once is remembered by its signature, so the next batches skip straight to the
    per-snapshot checks.

    With ``workers`` (``pool.IngestWorkers``), decompressing, parsing, checking and preparing
    a request for the store run in a worker process, on another core; this process parses
    the checked request again (for the registry, the head and the listeners: a few percent of
    the work) and does everything that needs state: admission, the host and series bounds,
    the WAL, the head, the listeners."""

    def __init__(self, store: Store, limits: IngestLimits, clock: Callable[[], float]) -> None:
        self.store = store
        self.limits = limits
        self._clock = clock
        self.registry = SeriesRegistry(
            store, limits.max_series_per_host, limits.series_active_window_ms
        )
        self.admission = Admission(
            limits.max_pending, limits.max_pending_bytes, limits.overload_retry_after
        )
        self.checker = Checker(limits)
        """Its ``validated``: the signatures stored (their hosts and series counted)."""
        self.workers: IngestWorkers | None = None
        self._host_ids: set[str] | None = None  # filled from the store on first use
        self._hosts_lock = asyncio.Lock()
        self.listeners: list[Listener] = []
        """Called once the store has a request (the live hub, the alert engine)."""
        self.accepted_samples = 0
        self.duplicate_samples = 0
        """Samples of the stored requests since the start (``hostpulse_ingest_samples``)."""

    @property
    def prepares(self) -> bool:
        """True when the store takes requests prepared elsewhere (``ingest_prepared``)."""
        return isinstance(self.store, SQLiteStore)

    def _release(
        self, reserved: list[tuple[str, dict[SeriesKey, int | None]]], hosts: list[str]
    ) -> None:
        for host_id, before in reserved:
            self.registry.release(host_id, before)
        if self._host_ids is not None:
            self._host_ids.difference_update(hosts)

    async def ingest_body(
        self,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        only_host: str | None = None,
    ) -> IngestResult:
        """Decode, validate and store one request body (IngestError when refused; 503 with
        Retry-After when the server is overloaded, before any work is done).

        With ingest workers, a worker process decodes, checks and prepares it. Else (or when
        no worker can take it now) a small request is decoded and checked on the event loop
        (tens of microseconds); any other in a worker thread, so one large body cannot hold
        up other requests: zlib, zstd and protobuf parsing of each piece let the loop run in
        between."""
        size = len(body)
        self._admit(size)
        try:
            now_ms = int(self._clock() * 1000)
            if self.workers is not None:
                done = await self._in_worker(body, content_type, encoding, now_ms, only_host)
                if done is not None:
                    return await self._store(done[0], now_ms, only_host, done[1])
            checked = self._decode_small(body, content_type, encoding, now_ms)
            if checked is None:
                checked = await asyncio.to_thread(
                    self._decode_and_check, body, content_type, encoding, now_ms
                )
            return await self._store(checked, now_ms, only_host)
        finally:
            self.admission.leave(size)

    def _admit(self, size: int) -> None:
        """Admit a request of ``size`` bytes (``admission.leave`` when done); IngestError(503)
        with Retry-After when the server is overloaded."""
        try:
            self.admission.enter(size)
        except Overloaded as exc:
            raise IngestError(503, exc.reason, {"Retry-After": str(exc.retry_after)}) from None

    async def ingest_answer(
        self, answer: tuple[Any, ...], size: int, only_host: str | None
    ) -> IngestResult:
        """Store a request an ingest acceptor process has read and checked (``answer`` as
        ``worker.answer`` makes it, for a body of ``size`` bytes): admission, the bounds,
        the store, the listeners, as ``ingest_body``."""
        self._admit(size)
        try:
            now_ms = int(self._clock() * 1000)
            checked, prep = self._from_answer(answer)
            return await self._store(checked, now_ms, only_host, prep)
        finally:
            self.admission.leave(size)

    async def _in_worker(
        self,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        now_ms: int,
        only_host: str | None,
    ) -> tuple[Checked, Prepared | None] | None:
        """The request checked (and prepared) by an ingest worker; None when none can take
        it now. The worker's IngestError is raised here as it is."""
        assert self.workers is not None
        try:
            answer = await self.workers.run(only_host, now_ms, body, content_type, encoding)
        except WorkerDied:
            retry = str(self.limits.overload_retry_after)
            raise IngestError(
                503,
                "the ingest worker handling the request stopped; nothing was stored, send it again",
                {"Retry-After": retry},
            ) from None
        if answer is None:
            return None
        return self._from_answer(answer)

    def _from_answer(self, answer: tuple[Any, ...]) -> tuple[Checked, Prepared | None]:
        """A worker's or acceptor's answer (``worker.answer``) as this process stores it;
        its IngestError raised here as it is."""
        kind = answer[1]
        if kind == worker.REFUSED:
            raise IngestError(answer[2], answer[3], answer[4])
        if kind == worker.FAILED:
            raise RuntimeError(f"ingest worker: {answer[2]}")
        packed = answer[3] if kind == worker.PREPARED else None
        request = IngestRequest()
        request.ParseFromString(answer[3] if packed is None else packed[0])
        # the batches' bytes as the worker serialized them: ``prepare`` takes them (and the
        # worker's signatures as their digests) instead of serializing and hashing again
        serialized = batch_bytes(answer[3]) if packed is None else None
        if serialized is None or len(serialized) != len(request.batches):
            serialized = []
        sigs: bytes = answer[2]
        signatures = [sigs[i : i + 16] for i in range(0, len(sigs), 16)]
        per_host: dict[str, list[SeriesKey]] = {}
        fresh: list[bytes] = []
        validated = self.checker.validated
        # each batch's series-table digest (zeros: not made), for the keys of a new table
        tables: bytes = packed[3] if packed is not None else answer[4]
        for b, (batch, sig) in enumerate(zip(request.batches, signatures, strict=True)):
            if sig not in validated:  # checked by the worker; counted here
                table = tables[16 * b : 16 * b + 16]
                if table and table != _NO_TABLE:
                    keys = self.checker.keys_of(batch, table)
                else:
                    keys = series_keys(batch)
                per_host.setdefault(batch.host.host_id, []).extend(keys)
                fresh.append(sig)
        prep = unpack(packed, request) if packed is not None else None
        made = [
            None if (t := tables[16 * b : 16 * b + 16]) == _NO_TABLE or not t else t
            for b in range(len(request.batches))
        ]
        return Checked(request, signatures, per_host, fresh, serialized, tables=made), prep

    def _decode_small(
        self, body: bytes, content_type: str | None, encoding: str | None, now_ms: int
    ) -> Checked | None:
        """The checked request when it is small enough to do on the loop, else None."""
        if len(body) > INLINE_BODY_BYTES:
            return None
        try:
            raw = codec.decompress(body, encoding, INLINE_RAW_BYTES)
        except codec.TooLarge:
            return None
        except codec.CodecError:
            raw = None  # decode() reports it
        request = decode(body, content_type, encoding, self.limits, raw)
        counts = check_counts(request, self.limits)
        if counts.snapshots > INLINE_SNAPSHOTS or counts.series_defs > INLINE_SERIES:
            return None  # decoding again in the thread is cheap next to the checks
        return self.checker.check(request, now_ms, counted=True)

    def _decode_and_check(
        self, body: bytes, content_type: str | None, encoding: str | None, now_ms: int
    ) -> Checked:
        request = decode(body, content_type, encoding, self.limits)
        check_counts(request, self.limits)
        return self.checker.check(request, now_ms, counted=True)

    def check(self, request: IngestRequest, now_ms: int) -> Checked:
        """``Checker.check`` against the signatures stored: safe in a worker thread."""
        return self.checker.check(request, now_ms)

    async def ingest(self, request: IngestRequest, only_host: str | None = None) -> IngestResult:
        """Store ``request``; with ``only_host`` (the agent key's host) every batch must be
        that host's, else IngestError(403) and nothing is stored."""
        now_ms = int(self._clock() * 1000)
        request.DiscardUnknownFields()
        return await self._store(self.check(request, now_ms), now_ms, only_host)

    async def _hosts(self) -> set[str]:
        if self._host_ids is None:
            async with self._hosts_lock:
                if self._host_ids is None:
                    self._host_ids = {h.host_id for h in await self.store.hosts()}
        return self._host_ids

    async def _admit_hosts(self, request: IngestRequest) -> list[str]:
        """Count the request's new hosts against max_hosts (IngestError(403) over it); the
        new ones are returned to be forgotten again if the request is not stored."""
        known = await self._hosts()
        new = list({b.host.host_id for b in request.batches} - known)
        if new and len(known) + len(new) > self.limits.max_hosts:
            raise IngestError(
                403,
                f"the server already holds {len(known)} hosts; max_hosts "
                f"({self.limits.max_hosts}) allows no new host {sorted(new)[0]!r}: "
                "delete hosts that are gone or raise HOSTPULSE_MAX_HOSTS",
            )
        known.update(new)
        return new

    async def _store(
        self,
        checked: Checked,
        now_ms: int,
        only_host: str | None,
        prep: Prepared | None = None,
    ) -> IngestResult:
        request, signatures = checked.request, checked.signatures
        per_host, fresh = checked.per_host, checked.fresh
        if only_host is not None:  # after validation: a bad body is 422 whoever sends it
            for batch in request.batches:
                if batch.host.host_id != only_host:
                    raise IngestError(403, f"this key may only push for host {only_host}")
        new_hosts = await self._admit_hosts(request) if per_host else []
        reserved: list[tuple[str, dict[SeriesKey, int | None]]] = []
        try:
            for host_id, keys in per_host.items():
                reserved.append((host_id, await self.registry.reserve(host_id, keys, now_ms)))
            if prep is None and checked.serialized and isinstance(self.store, SQLiteStore):
                # the batches serialized by the check: prepare does not serialize them again
                prep = await prepare_async(
                    request,
                    checked.serialized,
                    checked.arrays,
                    checked.signatures,
                    checked.tails,
                    checked.tables,
                )
            if prep is not None:
                result = await cast(SQLiteStore, self.store).ingest_prepared(prep, now_ms)
            else:
                result = await self.store.ingest(request, now_ms)
        except InvalidRequestError as exc:  # the store's own check, after ours
            self._release(reserved, new_hosts)
            raise IngestError(422, str(exc)) from None
        except HeadFullError as exc:  # memory, not validity: the same request fits later
            self._release(reserved, new_hosts)
            later = {"Retry-After": str(self.limits.head_full_retry_after)}
            raise IngestError(503 if exc.whole_store else 429, str(exc), later) from None
        except StoreUnavailableError as exc:  # disk full, I/O error: nothing stored, send again
            self._release(reserved, new_hosts)
            logger.error("ingest refused: %s", exc)
            retry = str(self.limits.overload_retry_after)
            raise IngestError(503, f"{exc}; nothing was stored", {"Retry-After": retry}) from None
        except BaseException:
            self._release(reserved, new_hosts)
            raise
        self.checker.remember(fresh)
        self.accepted_samples += result.accepted
        self.duplicate_samples += result.duplicates
        for listener in self.listeners:
            try:
                listener(request, signatures)
            except Exception:  # stored already: a listener's bug must not fail the request
                logger.exception("ingest listener failed")
        return result
