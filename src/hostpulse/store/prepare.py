"""The first step of an ingest: check the request, turn each snapshot into numpy arrays once,
and compute the cache key of each batch's host and series table.

The key is a digest of the serialized batch up to its snapshots (the ``host`` and ``series``
fields come first in the encoding; the series part is hashed once, into the table digest),
plus the ``unsupported`` list; it is the same for every
request of an agent whose host and series table did not change, so the steady state finds the
table's column mapping without looking at the 150 series definitions one by one. The serialized
batches also make the WAL record, so nothing is serialized twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from google.protobuf.unknown_fields import UnknownFieldSet

from hostpulse.protocol import HostBatch, IngestRequest, Snapshot, varint
from hostpulse.store.exceptions import InvalidRequestError

IntP = npt.NDArray[np.intp]
F64 = npt.NDArray[np.float64]

_NO_TS = -(2**62)


@dataclass(slots=True)
class PreparedSnapshot:
    ts: int
    index: IntP
    values: F64
    source: Snapshot


class PreparedBatch:
    """A batch ready for the store: ``digest`` covers its host, series table and unsupported
    list; ``table_digest`` the series table alone (hosts of one kind share it), hashed when
    first asked for (only a batch whose digest is new to the store needs it)."""

    __slots__ = ("_span", "_table", "batch", "digest", "snapshots")

    def __init__(
        self,
        batch: HostBatch,
        digest: bytes,
        table_digest: bytes | None,
        snapshots: list[PreparedSnapshot],
        span: tuple[bytes, int, int] = (b"", 0, 0),
    ) -> None:
        self.batch = batch
        self.digest = digest
        self.snapshots = snapshots
        self._table = table_digest
        self._span = span  # the serialized batch and where its series table is in it

    @property
    def table_digest(self) -> bytes:
        if self._table is None:
            data, lo, hi = self._span
            self._table = hashlib.blake2b(memoryview(data)[lo:hi], digest_size=16).digest()
        return self._table


@dataclass(slots=True)
class Prepared:
    batches: list[PreparedBatch]
    payload: bytes  # the serialized IngestRequest
    newest_ms: int


def _field_size(size: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag and ``size`` bytes of content."""
    return 2 + size if size < 0x80 else 1 + (size.bit_length() + 6) // 7 + size


def plain_layout(batch: HostBatch) -> bool:
    """True when the batch has no unknown fields of its own, so its serialization is
    ``host``, ``series``, ``snapshots``, ``unsupported`` in this order and nothing else (unknown
    fields are written after the known ones, which would shift every offset computed from the
    end)."""
    return len(UnknownFieldSet(batch)) == 0


def _snapshot_fields(data: bytes, start: int) -> list[tuple[int, int, int, int]] | None:
    """Where the packed ``series_index`` and ``values`` of each snapshot of a serialized
    HostBatch are (the snapshots start at ``start``): per snapshot (index start, index end,
    values start, values end); None when anything is not exactly the plain layout (then the
    caller reads the parsed message instead): a tag other than the known ones, a field that
    does not end where its message ends, a second ``series_index`` or ``values`` run."""
    out: list[tuple[int, int, int, int]] = []
    pos, end = start, len(data)
    try:
        while pos < end:
            tag = data[pos]
            size, body = varint.decode(data, pos + 1)
            stop = body + size
            if stop > end:
                return None
            if tag == 0x1A:  # snapshots
                idx: tuple[int, int] | None = None
                vals: tuple[int, int] | None = None
                p = body
                while p < stop:
                    t = data[p]
                    if t in (0x08, 0x30):  # timestamp_ms, sequence
                        _, p = varint.decode(data, p + 1)
                        continue
                    if t not in (0x12, 0x1A, 0x22, 0x2A):
                        return None
                    n, q = varint.decode(data, p + 1)
                    if t == 0x1A:
                        if vals is not None or n % 8:
                            return None
                        vals = (q, q + n)
                    elif t == 0x12:
                        if idx is not None:
                            return None
                        idx = (q, q + n)
                    p = q + n
                if p != stop:
                    return None
                out.append((*(idx or (body, body)), *(vals or (body, body))))
            elif tag != 0x22:  # unsupported
                return None
            pos = stop
    except (IndexError, varint.VarintError):
        return None
    return out if pos == end else None


IDENTITY_MAX = 16_384
"""Series counts up to which a run in table order is recognised and shared (``identity``)."""


@functools.lru_cache(maxsize=256)
def _identity(n: int) -> IntP:
    cols = np.arange(n, dtype=np.intp)
    cols.flags.writeable = False
    return cols


def identity(n: int) -> IntP:
    """0..n-1 (read only): the series indexes of a snapshot in table order, and the head
    columns of a host's series in table order; one shared array per ``n`` up to
    ``IDENTITY_MAX`` (a larger one is a new array each time)."""
    if n > IDENTITY_MAX:
        cols = np.arange(n, dtype=np.intp)
        cols.flags.writeable = False
        return cols
    return _identity(n)


def is_identity(a: IntP) -> bool:
    """Whether ``a`` is the shared ``identity`` of its length (then it is 0..n-1 without
    looking at it; an equal array that is not the shared one answers False)."""
    n = len(a)
    return n <= IDENTITY_MAX and a is _identity(n)


def _packed_size(n: int) -> int:
    """Bytes of 0..n-1 as packed varints."""
    size, lo, width = 0, 0, 1
    while lo < n:
        hi = min(n, 1 << (7 * width))
        size += (hi - lo) * width
        lo, width = hi, width + 1
    return size


_IN_ORDER_RUN = b"".join(varint.encode(i) for i in range(IDENTITY_MAX))
"""0..IDENTITY_MAX-1 as packed varints: a prefix of it is the run of a snapshot in table
order."""


def _in_order(run: bytes, n: int) -> bool:
    """Whether ``run`` (a packed ``series_index``) is 0..n-1."""
    return n <= IDENTITY_MAX and len(run) == _packed_size(n) and _IN_ORDER_RUN.startswith(run)


def table_keys(batch: HostBatch) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """The (metric, labels) key of each entry of the batch's series table, in order.

    Read through slices (``[:]``), and a series without labels not read at all: iterating a
    repeated field of the protobuf runtime ends in an IndexError raised and caught for each
    one (a series' labels too), which made this twice as slow (251 -> 123 us for a table of
    151 series); a new table is read this way by the ingest check and by registration."""
    out: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for sd in batch.series[:]:
        labels = sd.labels
        out.append((sd.metric, tuple([(lb.name, lb.value) for lb in labels[:]]) if labels else ()))
    return out


Arrays = list[tuple[IntP, F64]]
"""Per snapshot of a batch: its series indexes and its values."""


def tail_size(batch: HostBatch) -> int:
    """Bytes of the batch's serialized ``snapshots`` and ``unsupported`` fields (they come
    last in the plain layout)."""
    size = 0
    for snap in batch.snapshots:
        size += _field_size(snap.ByteSize())
    for u in batch.unsupported:
        size += _field_size(len(u.encode()))
    return size


def batch_arrays(batch: HostBatch, data: bytes | None = None, tail: int | None = None) -> Arrays:
    """Each snapshot's series indexes and values as arrays, read once (the ingest check and
    ``prepare`` share them). With the serialized batch ``data`` in the plain layout, the
    values are views of ``data`` and an index run is compared as bytes: the table order
    (0..n-1, what agents send) is the shared ``identity(n)``, and a run equal to the previous
    snapshot's is that snapshot's array (the same object), so a check may skip what it
    checked on it already. Else both come from the parsed message. Nothing is checked here:
    the two lengths may differ, an index may be out of range or repeated."""
    snaps = batch.snapshots
    fields = None
    if data is not None and plain_layout(batch):
        if tail is None:
            tail = tail_size(batch)
        fields = _snapshot_fields(data, len(data) - tail)
    if data is None or fields is None or len(fields) != len(snaps):
        return [
            (np.asarray(s.series_index, dtype=np.intp), np.asarray(s.values, dtype=np.float64))
            for s in snaps
        ]
    out: Arrays = []
    prev_run = b""
    prev: IntP | None = None
    for snap, (ilo, ihi, vlo, vhi) in zip(snaps, fields, strict=True):
        count = (vhi - vlo) // 8
        values: F64 = np.frombuffer(data, dtype="<f8", count=count, offset=vlo)
        run = data[ilo:ihi]
        if prev is not None and run == prev_run:
            idx = prev
        elif _in_order(run, count):
            idx = identity(count)
        else:
            idx = np.asarray(snap.series_index, dtype=np.intp)
        out.append((idx, values))
        prev, prev_run = idx, run
    return out


OFF_LOOP_SNAPSHOTS = 32
"""A request with more snapshots than this is prepared in a worker thread (serializing and
slicing a large request takes long enough to be felt by every other request)."""

REPLAY_FUTURE_MS = 86_400_000
"""Replay keeps no sample stamped further ahead than this (ingest refuses far less)."""


async def prepare_async(
    request: IngestRequest,
    serialized: Sequence[bytes] | None = None,
    arrays: Sequence[Arrays] | None = None,
    digests: Sequence[bytes] | None = None,
    tails: Sequence[int] | None = None,
    tables: Sequence[bytes | None] | None = None,
) -> Prepared:
    """``prepare``, in a worker thread when the request is large."""
    if sum(len(b.snapshots) for b in request.batches) > OFF_LOOP_SNAPSHOTS:
        return await asyncio.to_thread(prepare, request, serialized, arrays, digests, tails, tables)
    return prepare(request, serialized, arrays, digests, tails, tables)


def drop_outside(request: IngestRequest, oldest_ms: int, newest_ms: int) -> int:
    """Remove the snapshots stamped before ``oldest_ms`` or after ``newest_ms``; return how many.
    Replay uses it so a log record cannot do what ingest refuses now (samples older than the
    raw retention would each open a head window, and be deleted at the next maintenance)."""
    dropped = 0
    for batch in request.batches:
        snaps = batch.snapshots
        keep = [s for s in snaps if oldest_ms <= s.timestamp_ms <= newest_ms]
        if len(keep) != len(snaps):
            dropped += len(snaps) - len(keep)
            kept = []
            for snap in keep:  # copies: clearing the field detaches its elements
                copy = Snapshot()
                copy.CopyFrom(snap)
                kept.append(copy)
            batch.ClearField("snapshots")
            batch.snapshots.extend(kept)
    return dropped


def prepare(
    request: IngestRequest,
    serialized: Sequence[bytes] | None = None,
    arrays: Sequence[Arrays] | None = None,
    digests: Sequence[bytes] | None = None,
    tails: Sequence[int] | None = None,
    tables: Sequence[bytes | None] | None = None,
) -> Prepared:
    """The request prepared for the store; ``serialized``: its batches serialized, when the
    caller has them already (the ingest check makes them); ``arrays``: each batch's
    ``batch_arrays``, checked already (the ingest check: equal lengths, indexes in range and
    not repeated), so they are taken as they are; ``digests``: each batch's digest of its
    host, series table and unsupported list when the caller has one (the ingest check's
    ``series_signature``), so the table is not hashed again; ``tails``: each batch's
    ``tail_size``, when the caller has it; ``tables``: with ``digests``, each batch's
    series-table digest where the caller made it (``table_digest``; None: hashed here when
    asked for)."""
    batches: list[PreparedBatch] = []
    parts: list[bytes] = []
    newest = _NO_TS
    for b, batch in enumerate(request.batches):
        if not batch.host.host_id:
            raise InvalidRequestError(f"batches[{b}].host.host_id is empty")
        n = len(batch.series)
        data = batch.SerializeToString() if serialized is None else serialized[b]
        tail = tail_size(batch) if tails is None else tails[b]
        if arrays is None:
            arrs = batch_arrays(batch, data, tail)
            _check_arrays(arrs, n, b)
        else:
            arrs = arrays[b]
        snaps = [
            PreparedSnapshot(snap.timestamp_ms, idx, values, snap)
            for snap, (idx, values) in zip(batch.snapshots, arrs, strict=True)
        ]
        for ps in snaps:
            if ps.ts > newest:
                newest = ps.ts
        host_size = _field_size(batch.host.ByteSize()) if batch.HasField("host") else 0
        span = (data, host_size, len(data) - tail)
        if digests is not None:
            table = tables[b] if tables is not None else None
            batches.append(PreparedBatch(batch, digests[b], table, snaps, span))
        else:
            # the series table is hashed once: the key covers the (self-delimiting) host
            # field, the table's digest and the unsupported list
            pb = PreparedBatch(batch, b"", None, snaps, span)
            key = hashlib.blake2b(memoryview(data)[:host_size], digest_size=16)
            key.update(pb.table_digest)
            for u in batch.unsupported:
                key.update(b"\x00" + u.encode())
            pb.digest = key.digest()
            batches.append(pb)
        parts += (b"\x0a", varint.encode(len(data)), data)
    return Prepared(batches, b"".join(parts), newest)


def _check_arrays(arrs: Arrays, n: int, b: int) -> None:
    """The store's own check of a batch's ``batch_arrays`` (``n`` series): InvalidRequestError
    for an index out of range or repeated, or a count of values unlike the count of indexes."""
    checked: IntP | None = None
    for i, (idx, values) in enumerate(arrs):
        if idx is not checked and len(idx):
            if is_identity(idx):
                bad = len(idx) > n
            else:
                bad = int(idx.max()) >= n or int(idx.min()) < 0 or np.bincount(idx).max() > 1
            if bad:
                raise InvalidRequestError(
                    f"batches[{b}].snapshots[{i}].series_index: out of range or repeated"
                )
            checked = idx
        if len(idx) != len(values):
            raise InvalidRequestError(
                f"batches[{b}].snapshots[{i}]: {len(idx)} series_index, {len(values)} values"
            )


Packed = tuple[bytes, int, bytes, bytes, bytes, bytes, bytes]
"""A ``Prepared`` as plain bytes (``pack``): payload, newest_ms, the batches' digests and table
digests (16 bytes each), then as raw native arrays: per snapshot (batch, timestamp, value
count) in int64, all series indexes (intp) and all values (float64), concatenated."""


def pack(prep: Prepared) -> Packed:
    """``prep`` flattened for another process (an ingest worker's answer): no message objects
    nor arrays, only bytes, which pickle as they are."""
    rows: list[int] = []
    idx: list[IntP] = []
    vals: list[F64] = []
    for b, pb in enumerate(prep.batches):
        for ps in pb.snapshots:
            rows += (b, ps.ts, len(ps.index))
            idx.append(ps.index)
            vals.append(ps.values)
    return (
        prep.payload,
        prep.newest_ms,
        b"".join(pb.digest for pb in prep.batches),
        b"".join(pb.table_digest for pb in prep.batches),
        np.array(rows, dtype=np.int64).tobytes(),
        np.concatenate(idx).astype(np.intp, copy=False).tobytes() if idx else b"",
        np.concatenate(vals).astype(np.float64, copy=False).tobytes() if vals else b"",
    )


def unpack(packed: Packed, request: IngestRequest) -> Prepared:
    """The ``Prepared`` of ``pack`` again, for ``request`` (the payload parsed: its batches and
    snapshots are the ones the arrays describe, in order)."""
    payload, newest, digests, tables, rows, idx_b, vals_b = packed
    idx: IntP = np.frombuffer(idx_b, dtype=np.intp)
    vals: F64 = np.frombuffer(vals_b, dtype=np.float64)
    batches = [
        PreparedBatch(batch, digests[16 * b : 16 * b + 16], tables[16 * b : 16 * b + 16], [])
        for b, batch in enumerate(request.batches)
    ]
    pos = 0
    counts = [0] * len(batches)
    flat = np.frombuffer(rows, dtype=np.int64).tolist()
    for k in range(0, len(flat), 3):
        b, ts, n = flat[k], flat[k + 1], flat[k + 2]
        pb = batches[b]
        src = pb.batch.snapshots[counts[b]]
        counts[b] += 1
        end = pos + n
        pb.snapshots.append(PreparedSnapshot(ts, idx[pos:end], vals[pos:end], src))
        pos = end
    return Prepared(batches, payload, newest)
