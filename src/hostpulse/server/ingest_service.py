"""Ingest: decode, validate (all or nothing), then hand the request to the store.

The hot path works per snapshot, not per sample: finiteness is checked with one ``sum`` over the
packed values (a finite sum means every value is finite; only when it is not do we look for the
offending value), index range with one ``max``, and a host's series definitions are validated
once and remembered by a digest, so a host that keeps sending the same series costs one
copy, one serialisation and a set lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hostpulse import catalog
from hostpulse.protocol import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    HostBatch,
    IngestRequest,
    codec,
)
from hostpulse.server.admission import Admission, Overloaded
from hostpulse.store.base import Store
from hostpulse.store.exceptions import InvalidRequestError, StoreUnavailableError
from hostpulse.store.types import IngestResult

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 200
MAX_LABEL_LENGTH = 1024


class IngestError(Exception):
    """A request that is refused; ``status`` is the HTTP status to answer with, ``headers``
    extra response headers (``Retry-After`` of an overload 503)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_future_ms: int = 300_000
    max_series_per_host: int = 5000
    max_pending: int = 256
    max_pending_bytes: int = 256 * 1024 * 1024
    overload_retry_after: int = 5


SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Listener = Callable[[IngestRequest, Sequence[bytes]], None]
"""Called with each request once the store has it, and with each batch's series signature
(``series_signature``: equal signatures mean the same host identity and series table, so a
listener can cache what it derives from the table); must not block."""


def decode(
    body: bytes, content_type: str | None, encoding: str | None, limits: IngestLimits
) -> IngestRequest:
    """The request in ``body``; IngestError(413/415/400) when it cannot be read."""
    if codec.media_type(content_type) not in (PROTOBUF_CONTENT_TYPE, JSON_CONTENT_TYPE):
        raise IngestError(
            415,
            f"Content-Type {content_type!r} is not supported "
            f"(use {PROTOBUF_CONTENT_TYPE} or {JSON_CONTENT_TYPE})",
        )
    try:
        raw = codec.decompress(body, encoding, limits.max_decompressed_bytes)
        return codec.parse(raw, content_type)
    except codec.TooLarge as exc:
        raise IngestError(413, str(exc)) from None
    except codec.UnsupportedMediaType as exc:
        raise IngestError(415, str(exc)) from None
    except codec.CodecError as exc:
        raise IngestError(400, str(exc)) from None


def _check_series_def(host_id: str, i: int, metric: str, labels: SeriesKey) -> None:
    m = catalog.BY_KEY.get(metric)
    where = f"host {host_id!r} series[{i}]"
    if m is None and catalog.is_custom(metric):
        problem = catalog.custom_problem(metric, labels[1])
        if problem is not None:
            raise IngestError(422, f"{where} ({metric[:100]}): {problem}")
        return
    if m is None:
        raise IngestError(422, f"{where}: unknown metric {metric!r} (not in the catalog)")
    names = tuple(n for n, _ in labels[1])
    if names != m.labels:
        raise IngestError(
            422,
            f"{where} ({metric}): labels {list(names)} do not match the catalog's "
            f"{list(m.labels)} (names and order)",
        )
    for n, v in labels[1]:
        if len(v) > MAX_LABEL_LENGTH:
            raise IngestError(422, f"{where} ({metric}): label {n!r} is longer than 1024")


def _series_keys(batch: HostBatch) -> list[SeriesKey]:
    return [(sd.metric, tuple((lb.name, lb.value) for lb in sd.labels)) for sd in batch.series]


class SeriesRegistry:
    """The series each host has, to enforce ``max_series_per_host`` without asking the store on
    every request. Filled from the store on a host's first request after start."""

    def __init__(self, store: Store, limit: int) -> None:
        self._store = store
        self._limit = limit
        self._known: dict[str, set[SeriesKey]] = {}
        self._lock = asyncio.Lock()

    async def known(self, host_id: str) -> set[SeriesKey]:
        found = self._known.get(host_id)
        if found is None:
            async with self._lock:
                found = self._known.get(host_id)
                if found is None:
                    rows = await self._store.series(host_id)
                    found = {(s.metric, s.labels) for s in rows}
                    self._known[host_id] = found
        return found

    async def reserve(self, host_id: str, keys: list[SeriesKey]) -> set[SeriesKey]:
        """The keys that are new for this host, counted at once (no await between the check
        and the count, so concurrent requests cannot both pass the limit); IngestError(422)
        when over the limit. ``release`` them if the request is not stored."""
        known = await self.known(host_id)
        new = {k for k in keys if k not in known}
        if new:
            total = len(known) + len(new)
            if total > self._limit:
                raise IngestError(
                    422,
                    f"host {host_id!r} would have {total} series, more than the limit of "
                    f"{self._limit} (max_series_per_host)",
                )
            known.update(new)
        return new

    def release(self, host_id: str, keys: set[SeriesKey]) -> None:
        self._known.get(host_id, set()).difference_update(keys)


def validate_series(batch: HostBatch, b: int, keys: list[SeriesKey]) -> None:
    """Check a batch's host and series table against the catalog; IngestError(422)."""
    host_id = batch.host.host_id
    if not host_id:
        raise IngestError(422, f"batches[{b}]: host.host_id is empty")
    if len(host_id) > MAX_ID_LENGTH:
        raise IngestError(422, f"batches[{b}]: host.host_id is longer than {MAX_ID_LENGTH}")
    iv = batch.host.interval_seconds
    if not math.isfinite(iv) or iv < 0:
        raise IngestError(422, f"host {host_id!r}: interval_seconds must be >= 0")
    for i, key in enumerate(keys):
        _check_series_def(host_id, i, key[0], key)
    if len(set(keys)) != len(keys):
        raise IngestError(422, f"host {host_id!r}: a series is declared twice")


def validate_snapshots(batch: HostBatch, now_ms: int, limits: IngestLimits) -> int:
    """Check every snapshot of a batch whose series table is valid; return its sample count."""
    host_id = batch.host.host_id
    n_series = len(batch.series)
    horizon = now_ms + limits.max_future_ms
    samples = 0
    for s, snap in enumerate(batch.snapshots):
        idx, values = snap.series_index, snap.values
        n = len(values)
        if len(idx) != n:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(422, f"{where}: {n} values but {len(idx)} series_index entries")
        ts = snap.timestamp_ms
        if ts <= 0 or ts > horizon:
            where = f"host {host_id!r} snapshots[{s}]"
            if ts <= 0:
                raise IngestError(422, f"{where}: timestamp_ms must be positive")
            raise IngestError(
                422,
                f"{where}: timestamp_ms {ts} is more than "
                f"{limits.max_future_ms // 1000} s in the future",
            )
        if n == 0:
            continue
        top = max(idx)
        if top >= n_series:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(
                422, f"{where}: series_index {top} is out of range ({n_series} series)"
            )
        if not math.isfinite(sum(values)):
            for j, v in enumerate(values):
                if not math.isfinite(v):
                    name = batch.series[idx[j]].metric
                    raise IngestError(
                        422,
                        f"host {host_id!r} snapshots[{s}]: value of {name} is {v} (must be finite)",
                    )
        if len(set(idx)) != n:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(422, f"{where}: a series appears twice in one snapshot")
        samples += n
    return samples


def _field_size(size: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag and ``size`` bytes of content."""
    return 2 + size if size < 0x80 else 1 + (size.bit_length() + 6) // 7 + size


def series_signature(batch: HostBatch) -> bytes:
    """A digest of the batch serialized without its snapshots (host identity, series table,
    unsupported list).

    The serialization is ``host``, ``series``, ``snapshots``, ``unsupported`` in field order,
    so those bytes are the serialized batch minus the snapshots' span: one C-level
    serialisation instead of a copy of the batch (half the cost). Should a serializer ever
    order the fields differently, the copy is made (same digest)."""
    data = batch.SerializeToString()
    snaps = sum(_field_size(s.ByteSize()) for s in batch.snapshots)
    tail = sum(_field_size(len(u.encode())) for u in batch.unsupported)
    cut = len(data) - snaps - tail
    if (
        cut >= 0
        and (snaps == 0 or data[cut] == 0x1A)
        and (tail == 0 or data[len(data) - tail] == 0x22)
    ):
        view = memoryview(data)
        digest = hashlib.blake2b(view[:cut], digest_size=16)
        digest.update(view[len(data) - tail :])
        return digest.digest()
    head = HostBatch()
    head.CopyFrom(batch)
    head.ClearField("snapshots")
    return hashlib.blake2b(head.SerializeToString(), digest_size=16).digest()


class IngestService:
    """Validates requests and writes them to the store. A (host, series table) validated and
    stored once is remembered by its signature, so the next batches skip straight to the
    per-snapshot checks."""

    MAX_SIGNATURES = 200_000

    def __init__(self, store: Store, limits: IngestLimits, clock: Callable[[], float]) -> None:
        self.store = store
        self.limits = limits
        self._clock = clock
        self.registry = SeriesRegistry(store, limits.max_series_per_host)
        self.admission = Admission(
            limits.max_pending, limits.max_pending_bytes, limits.overload_retry_after
        )
        self._validated: set[bytes] = set()
        self.listeners: list[Listener] = []
        """Called once the store has a request (the live hub, the alert engine)."""

    def _release(self, reserved: list[tuple[str, set[SeriesKey]]]) -> None:
        for host_id, new in reserved:
            self.registry.release(host_id, new)

    async def ingest_body(
        self,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        only_host: str | None = None,
    ) -> IngestResult:
        """Decode, validate and store one request body (IngestError when refused; 503 with
        Retry-After when the server is overloaded, before any work is done)."""
        size = len(body)
        try:
            self.admission.enter(size)
        except Overloaded as exc:
            raise IngestError(503, exc.reason, {"Retry-After": str(exc.retry_after)}) from None
        try:
            return await self.ingest(decode(body, content_type, encoding, self.limits), only_host)
        finally:
            self.admission.leave(size)

    async def ingest(self, request: IngestRequest, only_host: str | None = None) -> IngestResult:
        """Store ``request``; with ``only_host`` (the agent key's host) every batch must be
        that host's, else IngestError(403) and nothing is stored."""
        now_ms = int(self._clock() * 1000)
        per_host: dict[str, list[SeriesKey]] = {}
        signatures: list[bytes] = []  # of each batch
        fresh: list[bytes] = []  # of the batches whose table is validated by this request
        for b, batch in enumerate(request.batches):
            sig = series_signature(batch)
            signatures.append(sig)
            if sig not in self._validated:
                keys = _series_keys(batch)
                validate_series(batch, b, keys)
                per_host.setdefault(batch.host.host_id, []).extend(keys)
                fresh.append(sig)
            validate_snapshots(batch, now_ms, self.limits)
        if only_host is not None:  # after validation: a bad body is 422 whoever sends it
            for batch in request.batches:
                if batch.host.host_id != only_host:
                    raise IngestError(403, f"this key may only push for host {only_host}")
        reserved: list[tuple[str, set[SeriesKey]]] = []
        try:
            for host_id, keys in per_host.items():
                reserved.append((host_id, await self.registry.reserve(host_id, keys)))
            result = await self.store.ingest(request, now_ms)
        except InvalidRequestError as exc:  # the store's own check, after ours
            self._release(reserved)
            raise IngestError(422, str(exc)) from None
        except StoreUnavailableError as exc:  # disk full, I/O error: nothing stored, send again
            self._release(reserved)
            logger.error("ingest refused: %s", exc)
            retry = str(self.limits.overload_retry_after)
            raise IngestError(503, f"{exc}; nothing was stored", {"Retry-After": retry}) from None
        except BaseException:
            self._release(reserved)
            raise
        if len(self._validated) + len(fresh) > self.MAX_SIGNATURES:
            self._validated.clear()
        self._validated.update(fresh)
        for listener in self.listeners:
            try:
                listener(request, signatures)
            except Exception:  # stored already: a listener's bug must not fail the request
                logger.exception("ingest listener failed")
        return result
