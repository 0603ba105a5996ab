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
    Process,
    codec,
)
from hostpulse.server.admission import Admission, Overloaded
from hostpulse.server.ingest_wire import PIECE_BYTES, OverLimit, WireError, parse_large
from hostpulse.server.ingest_wire import Limits as WireLimits
from hostpulse.store.base import Store
from hostpulse.store.exceptions import (
    HeadFullError,
    InvalidRequestError,
    StoreUnavailableError,
)
from hostpulse.store.prepare import plain_layout
from hostpulse.store.types import IngestResult

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 200
MAX_LABEL_LENGTH = 1024
MAX_LABEL_NAME = 128
MAX_HOSTNAME = 255
MAX_HOST_TEXT = 256
"""os, kernel, arch, cpu_model, agent_version; and a process's name and user."""
MAX_STATUS = 32
MAX_CMDLINE = 4096
MAX_UNSUPPORTED = 1000


class IngestError(Exception):
    """A request that is refused; ``status`` is the HTTP status to answer with, ``headers``
    extra response headers (``Retry-After`` of an overload 503)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


WINDOW_MS = 600_000
"""The store's block window: the head keeps one matrix per host and window."""


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Every bound of one ingest request (docs/security.md, "Bounds on ingest and live")."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_json_bytes: int = 8 * 1024 * 1024
    max_future_ms: int = 300_000
    max_past_ms: int = 7 * 86_400_000
    max_series_per_host: int = 5000
    series_active_window_ms: int = 3_600_000
    """A series counts against max_series_per_host while it reported within this."""
    max_batches: int = 100
    max_series_defs: int = 20_000
    max_snapshots: int = 10_000
    max_samples: int = 1_000_000
    max_head_cells: int = 250_000
    max_processes: int = 100
    max_host_labels: int = 64
    max_hosts: int = 10_000
    max_pending: int = 256
    max_pending_bytes: int = 256 * 1024 * 1024
    overload_retry_after: int = 5
    head_full_retry_after: int = 60
    """Retry-After of a request over the store's head budget: the maintenance interval."""


SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Listener = Callable[[IngestRequest, Sequence[bytes]], None]
"""Called with each request once the store has it, and with each batch's series signature
(``series_signature``: equal signatures mean the same host identity and series table, so a
listener can cache what it derives from the table); must not block."""


def _wire_limits(limits: IngestLimits) -> WireLimits:
    return WireLimits(
        max_batches=limits.max_batches,
        max_series_per_batch=limits.max_series_per_host,
        max_series_defs=limits.max_series_defs,
        max_snapshots=limits.max_snapshots,
    )


def _over(exc: OverLimit) -> IngestError:
    if exc.setting == "max_series_per_host":
        return IngestError(
            422,
            f"a batch declares more than {exc.limit} series, the limit per host "
            "(max_series_per_host)",
        )
    if exc.setting.startswith("fixed"):
        return IngestError(413, f"{exc.field} is over {exc.limit} bytes (a fixed bound)")
    return IngestError(413, f"the request has more than {exc.limit} {exc.field} ({exc.setting})")


def decode(
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    limits: IngestLimits,
    raw: bytes | None = None,
) -> IngestRequest:
    """The request in ``body`` (or in its already decompressed ``raw``); IngestError(413/415/
    400) when it cannot be read or is over a count bound. A large protobuf body is counted at
    the wire level before it is parsed (``ingest_wire``). Unknown fields are dropped, so what
    is validated, stored, logged and forwarded is the same message."""
    kind = codec.media_type(content_type)
    if kind not in (PROTOBUF_CONTENT_TYPE, JSON_CONTENT_TYPE):
        raise IngestError(
            415,
            f"Content-Type {content_type!r} is not supported "
            f"(use {PROTOBUF_CONTENT_TYPE} or {JSON_CONTENT_TYPE})",
        )
    json_body = kind == JSON_CONTENT_TYPE
    cap = min(limits.max_json_bytes, limits.max_decompressed_bytes) if json_body else None
    try:
        if raw is None:
            raw = codec.decompress(body, encoding, cap or limits.max_decompressed_bytes)
        if cap is not None and len(raw) > cap:
            raise codec.TooLarge(f"body is {len(raw)} bytes")
        if not json_body and len(raw) > PIECE_BYTES:
            request = parse_large(raw, _wire_limits(limits))
        else:
            request = codec.parse(raw, content_type)
    except codec.TooLarge as exc:
        if json_body:
            raise IngestError(
                413,
                f"JSON body over {cap} bytes (max_json_bytes; send protobuf for more)",
            ) from None
        raise IngestError(413, str(exc)) from None
    except codec.UnsupportedMediaType as exc:
        raise IngestError(415, str(exc)) from None
    except OverLimit as exc:
        raise _over(exc) from None
    except WireError as exc:
        raise IngestError(400, f"malformed protobuf body: {exc}") from None
    except codec.CodecError as exc:
        raise IngestError(400, str(exc)) from None
    request.DiscardUnknownFields()
    return request


@dataclass(frozen=True, slots=True)
class Counts:
    series_defs: int
    snapshots: int


def check_counts(request: IngestRequest, limits: IngestLimits) -> Counts:
    """The count bounds of a parsed request (cheap: lengths only); IngestError(413/422)."""
    batches = request.batches
    if len(batches) > limits.max_batches:
        raise _over(OverLimit("batches", len(batches), limits.max_batches, "max_batches"))
    series = snapshots = 0
    for batch in batches:
        n = len(batch.series)
        if n > limits.max_series_per_host:
            raise _over(OverLimit("series", n, limits.max_series_per_host, "max_series_per_host"))
        series += n
        snapshots += len(batch.snapshots)
    if series > limits.max_series_defs:
        raise _over(
            OverLimit("series definitions", series, limits.max_series_defs, "max_series_defs")
        )
    if snapshots > limits.max_snapshots:
        raise _over(OverLimit("snapshots", snapshots, limits.max_snapshots, "max_snapshots"))
    return Counts(series, snapshots)


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


_NEVER = -(2**62)


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


def _text(where: str, name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise IngestError(422, f"{where}: {name} is {len(value)} characters, at most {limit}")


def _finite(where: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise IngestError(422, f"{where}: {name} is {value} (must be finite)")


def validate_host(batch: HostBatch, b: int, limits: IngestLimits) -> None:
    """Bounds and finiteness of a batch's host fields and unsupported list; IngestError(422)."""
    h = batch.host
    host_id = h.host_id
    if not host_id:
        raise IngestError(422, f"batches[{b}]: host.host_id is empty")
    if len(host_id) > MAX_ID_LENGTH:
        raise IngestError(422, f"batches[{b}]: host.host_id is longer than {MAX_ID_LENGTH}")
    where = f"host {host_id!r}"
    iv = h.interval_seconds
    if not math.isfinite(iv) or iv < 0:
        raise IngestError(422, f"{where}: interval_seconds must be >= 0")
    _finite(where, "boot_time", h.boot_time)
    _text(where, "hostname", h.hostname, MAX_HOSTNAME)
    for name in ("os", "kernel", "arch", "cpu_model", "agent_version"):
        _text(where, name, getattr(h, name), MAX_HOST_TEXT)
    if len(h.labels) > limits.max_host_labels:
        raise IngestError(
            422,
            f"{where}: {len(h.labels)} labels, at most {limits.max_host_labels} (max_host_labels)",
        )
    for lb in h.labels:
        _text(where, "a label name", lb.name, MAX_LABEL_NAME)
        _text(where, f"label {lb.name!r}", lb.value, MAX_LABEL_LENGTH)
    if len(batch.unsupported) > MAX_UNSUPPORTED:
        raise IngestError(422, f"{where}: unsupported lists more than {MAX_UNSUPPORTED} metrics")
    for u in batch.unsupported:
        _text(where, "an unsupported entry", u, MAX_ID_LENGTH)


def validate_series(
    batch: HostBatch, b: int, keys: list[SeriesKey], limits: IngestLimits | None = None
) -> None:
    """Check a batch's host and series table against the catalog and the bounds;
    IngestError(422)."""
    validate_host(batch, b, limits or IngestLimits())
    host_id = batch.host.host_id
    for i, key in enumerate(keys):
        _check_series_def(host_id, i, key[0], key)
    if len(set(keys)) != len(keys):
        raise IngestError(422, f"host {host_id!r}: a series is declared twice")


def _check_processes(where: str, name: str, procs: Sequence[Process], limit: int) -> None:
    if len(procs) > limit:
        raise IngestError(
            422, f"{where}: {name} has {len(procs)} processes, at most {limit} (max_processes)"
        )
    for p in procs:
        if not (math.isfinite(p.cpu_percent) and math.isfinite(p.mem_percent)):
            raise IngestError(422, f"{where}: {name} pid {p.pid}: percentages must be finite")
        if (
            len(p.name) > MAX_HOST_TEXT
            or len(p.user) > MAX_HOST_TEXT
            or len(p.status) > MAX_STATUS
            or len(p.cmdline) > MAX_CMDLINE
        ):
            raise IngestError(
                422,
                f"{where}: {name} pid {p.pid}: name and user at most {MAX_HOST_TEXT} "
                f"characters, status {MAX_STATUS}, cmdline {MAX_CMDLINE}",
            )


def validate_snapshots(batch: HostBatch, now_ms: int, limits: IngestLimits) -> int:
    """Check every snapshot of a batch whose series table is valid; return its sample count.
    Timestamps must lie within [now - max_past, now + max_future]; the batch's distinct
    timestamps times its series count (the cells of the head's matrices it may add: one row of
    the host's series per timestamp, however few values the snapshot has) are bounded by
    max_head_cells."""
    host_id = batch.host.host_id
    n_series = len(batch.series)
    horizon = now_ms + limits.max_future_ms
    oldest = now_ms - limits.max_past_ms
    samples = 0
    stamps: set[int] = set()
    for s, snap in enumerate(batch.snapshots):
        idx, values = snap.series_index, snap.values
        n = len(values)
        if len(idx) != n:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(422, f"{where}: {n} values but {len(idx)} series_index entries")
        ts = snap.timestamp_ms
        if ts < oldest or ts > horizon:
            where = f"host {host_id!r} snapshots[{s}]"
            if ts <= 0:
                raise IngestError(422, f"{where}: timestamp_ms must be positive")
            if ts < oldest:
                raise IngestError(
                    422,
                    f"{where}: timestamp_ms {ts} is more than "
                    f"{limits.max_past_ms // 1000} s in the past (max_past)",
                )
            raise IngestError(
                422,
                f"{where}: timestamp_ms {ts} is more than "
                f"{limits.max_future_ms // 1000} s in the future",
            )
        stamps.add(ts)
        if snap.top_cpu or snap.top_memory:
            where = f"host {host_id!r} snapshots[{s}]"
            _check_processes(where, "top_cpu", snap.top_cpu, limits.max_processes)
            _check_processes(where, "top_memory", snap.top_memory, limits.max_processes)
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
    cells = len(stamps) * max(n_series, 1)
    if cells > limits.max_head_cells:
        raise IngestError(
            413,
            f"host {host_id!r}: {len(stamps)} distinct timestamps x {n_series} series = "
            f"{cells}, over max_head_cells ({limits.max_head_cells}): send fewer snapshots "
            "per request",
        )
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
    if not plain_layout(batch):  # unknown fields come last: the offsets below would be off
        return _signature_of_copy(batch)
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
    return _signature_of_copy(batch)


def _signature_of_copy(batch: HostBatch) -> bytes:
    head = HostBatch()
    head.CopyFrom(batch)
    head.ClearField("snapshots")
    head.DiscardUnknownFields()
    return hashlib.blake2b(head.SerializeToString(), digest_size=16).digest()


INLINE_BODY_BYTES = 16 * 1024
INLINE_RAW_BYTES = 128 * 1024
INLINE_SNAPSHOTS = 32
INLINE_SERIES = 1000
"""A body within all of these is decoded and checked on the event loop (well under a
millisecond); any other in a worker thread."""


@dataclass(slots=True)
class Checked:
    """A validated request, with what storing it needs."""

    request: IngestRequest
    signatures: list[bytes]
    per_host: dict[str, list[SeriesKey]]
    fresh: list[bytes]


class IngestService:
    """Validates requests and writes them to the store. A (host, series table) validated and
    stored once is remembered by its signature, so the next batches skip straight to the
    per-snapshot checks."""

    MAX_SIGNATURES = 200_000

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
        self._validated: set[bytes] = set()
        self._host_ids: set[str] | None = None  # filled from the store on first use
        self._hosts_lock = asyncio.Lock()
        self.listeners: list[Listener] = []
        """Called once the store has a request (the live hub, the alert engine)."""
        self.accepted_samples = 0
        self.duplicate_samples = 0
        """Samples of the stored requests since the start (``hostpulse_ingest_samples``)."""

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

        A small request is decoded and checked on the event loop (tens of microseconds); any
        other in a worker thread, so one large body cannot hold up other requests: zlib, zstd
        and protobuf parsing of each piece let the loop run in between."""
        size = len(body)
        try:
            self.admission.enter(size)
        except Overloaded as exc:
            raise IngestError(503, exc.reason, {"Retry-After": str(exc.retry_after)}) from None
        try:
            now_ms = int(self._clock() * 1000)
            checked = self._decode_small(body, content_type, encoding, now_ms)
            if checked is None:
                checked = await asyncio.to_thread(
                    self._decode_and_check, body, content_type, encoding, now_ms
                )
            return await self._store(checked, now_ms, only_host)
        finally:
            self.admission.leave(size)

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
        return self.check(request, now_ms)

    def _decode_and_check(
        self, body: bytes, content_type: str | None, encoding: str | None, now_ms: int
    ) -> Checked:
        request = decode(body, content_type, encoding, self.limits)
        check_counts(request, self.limits)
        return self.check(request, now_ms)

    def check(self, request: IngestRequest, now_ms: int) -> Checked:
        """Validate ``request`` whole (IngestError(413/422) naming the first problem). Touches
        no state but reads the set of validated signatures: safe in a worker thread."""
        check_counts(request, self.limits)
        per_host: dict[str, list[SeriesKey]] = {}
        signatures: list[bytes] = []  # of each batch
        fresh: list[bytes] = []  # of the batches whose table is validated by this request
        samples = 0
        for b, batch in enumerate(request.batches):
            sig = series_signature(batch)
            signatures.append(sig)
            if sig not in self._validated:
                keys = _series_keys(batch)
                validate_series(batch, b, keys, self.limits)
                per_host.setdefault(batch.host.host_id, []).extend(keys)
                fresh.append(sig)
            samples += validate_snapshots(batch, now_ms, self.limits)
            if samples > self.limits.max_samples:
                raise IngestError(
                    413,
                    f"the request has more than {self.limits.max_samples} samples (max_samples)",
                )
        return Checked(request, signatures, per_host, fresh)

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

    async def _store(self, checked: Checked, now_ms: int, only_host: str | None) -> IngestResult:
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
        if len(self._validated) + len(fresh) > self.MAX_SIGNATURES:
            self._validated.clear()
        self._validated.update(fresh)
        self.accepted_samples += result.accepted
        self.duplicate_samples += result.duplicates
        for listener in self.listeners:
            try:
                listener(request, signatures)
            except Exception:  # stored already: a listener's bug must not fail the request
                logger.exception("ingest listener failed")
        return result
