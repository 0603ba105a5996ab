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
_EMPTY: F64 = np.zeros(0, dtype=np.float64)


@dataclass(slots=True)
class PreparedSnapshot:
    ts: int
    index: IntP
    values: F64
    source: Snapshot


@dataclass(slots=True)
class PreparedBatch:
    batch: HostBatch
    digest: bytes  # host + series table + unsupported
    table_digest: bytes  # series table alone (hosts of one kind share it)
    snapshots: list[PreparedSnapshot]


@dataclass(slots=True)
class Prepared:
    batches: list[PreparedBatch]
    payload: bytes  # the serialized IngestRequest
    newest_ms: int


def _field_size(size: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag and ``size`` bytes of content."""
    return 1 + len(varint.encode(size)) + size


def plain_layout(batch: HostBatch) -> bool:
    """True when the batch has no unknown fields of its own, so its serialization is
    ``host``, ``series``, ``snapshots``, ``unsupported`` in this order and nothing else (unknown
    fields are written after the known ones, which would shift every offset computed from the
    end)."""
    return len(UnknownFieldSet(batch)) == 0


def _snapshot_fields(data: bytes, start: int) -> list[tuple[int, int]] | None:
    """Where the packed ``values`` of each snapshot of a serialized HostBatch are (the
    snapshots start at ``start``); None when anything is not exactly the plain layout (then
    the caller reads the parsed message instead): a tag other than the known ones, a field
    that does not end where its message ends, a second ``values`` run."""
    out: list[tuple[int, int]] = []
    pos, end = start, len(data)
    try:
        while pos < end:
            tag = data[pos]
            size, body = varint.decode(data, pos + 1)
            stop = body + size
            if stop > end:
                return None
            if tag == 0x1A:  # snapshots
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
                    p = q + n
                if p != stop:
                    return None
                out.append(vals or (body, body))
            elif tag != 0x22:  # unsupported
                return None
            pos = stop
    except (IndexError, varint.VarintError):
        return None
    return out if pos == end else None


OFF_LOOP_SNAPSHOTS = 32
"""A request with more snapshots than this is prepared in a worker thread (serializing and
slicing a large request takes long enough to be felt by every other request)."""

REPLAY_FUTURE_MS = 86_400_000
"""Replay keeps no sample stamped further ahead than this (ingest refuses far less)."""


async def prepare_async(
    request: IngestRequest, serialized: Sequence[bytes] | None = None
) -> Prepared:
    """``prepare``, in a worker thread when the request is large."""
    if sum(len(b.snapshots) for b in request.batches) > OFF_LOOP_SNAPSHOTS:
        return await asyncio.to_thread(prepare, request, serialized)
    return prepare(request, serialized)


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


def prepare(request: IngestRequest, serialized: Sequence[bytes] | None = None) -> Prepared:
    """The request prepared for the store; ``serialized``: its batches serialized, when the
    caller has them already (the ingest check makes them)."""
    batches: list[PreparedBatch] = []
    parts: list[bytes] = []
    newest = _NO_TS
    for b, batch in enumerate(request.batches):
        if not batch.host.host_id:
            raise InvalidRequestError(f"batches[{b}].host.host_id is empty")
        n = len(batch.series)
        data = batch.SerializeToString() if serialized is None else serialized[b]
        snaps: list[PreparedSnapshot] = []
        checked: IntP | None = None
        checked_src: Snapshot | None = None
        tail = 0
        for i, snap in enumerate(batch.snapshots):
            tail += _field_size(snap.ByteSize())
            idx: IntP
            if (
                checked is not None
                and checked_src is not None
                and (snap.series_index == checked_src.series_index)
            ):
                idx = checked
            else:
                idx = np.asarray(snap.series_index, dtype=np.intp)
            snaps.append(PreparedSnapshot(snap.timestamp_ms, idx, _EMPTY, snap))
            newest = max(newest, snap.timestamp_ms)
            if idx is checked:
                continue
            if len(idx) and (int(idx.max()) >= n or np.bincount(idx).max() > 1):
                raise InvalidRequestError(
                    f"batches[{b}].snapshots[{i}].series_index: out of range or repeated"
                )
            checked, checked_src = idx, snap
        unsupported = [u.encode() for u in batch.unsupported]
        tail += sum(_field_size(len(u)) for u in unsupported)
        fields = _snapshot_fields(data, len(data) - tail) if plain_layout(batch) else None
        fast = fields is not None and len(fields) == len(snaps)
        for i, ps in enumerate(snaps):
            if fast and fields is not None:
                lo, hi = fields[i]
                ps.values = np.frombuffer(data, dtype="<f8", count=(hi - lo) // 8, offset=lo)
            else:
                ps.values = np.asarray(ps.source.values, dtype=np.float64)
            if len(ps.index) != len(ps.values):
                raise InvalidRequestError(
                    f"batches[{b}].snapshots[{i}]: {len(ps.index)} series_index, "
                    f"{len(ps.values)} values"
                )
        # the series table is hashed once: the key covers the (self-delimiting) host field,
        # the table's digest and the unsupported list
        view = memoryview(data)
        host_size = _field_size(batch.host.ByteSize()) if batch.HasField("host") else 0
        table = hashlib.blake2b(view[host_size : len(data) - tail], digest_size=16).digest()
        key = hashlib.blake2b(view[:host_size], digest_size=16)
        key.update(table)
        for u in unsupported:
            key.update(b"\x00" + u)
        batches.append(PreparedBatch(batch, key.digest(), table, snaps))
        parts += (b"\x0a", varint.encode(len(data)), data)
    return Prepared(batches, b"".join(parts), newest)


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
