"""The first step of an ingest: check the request, turn each snapshot into numpy arrays once,
and compute the cache key of each batch's host and series table.

The key is a digest of the serialized batch up to its snapshots (the ``host`` and ``series``
fields come first in the encoding), plus the ``unsupported`` list; it is the same for every
request of an agent whose host and series table did not change, so the steady state finds the
table's column mapping without looking at the 150 series definitions one by one. The serialized
batches also make the WAL record, so nothing is serialized twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hostpulse.protocol import HostBatch, IngestRequest, Snapshot
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


@dataclass(slots=True)
class PreparedBatch:
    batch: HostBatch
    digest: bytes
    snapshots: list[PreparedSnapshot]


@dataclass(slots=True)
class Prepared:
    batches: list[PreparedBatch]
    payload: bytes  # the serialized IngestRequest
    newest_ms: int


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_size(size: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag and ``size`` bytes of content."""
    return 1 + len(varint(size)) + size


def prepare(request: IngestRequest) -> Prepared:
    batches: list[PreparedBatch] = []
    parts: list[bytes] = []
    newest = _NO_TS
    for b, batch in enumerate(request.batches):
        if not batch.host.host_id:
            raise InvalidRequestError(f"batches[{b}].host.host_id is empty")
        n = len(batch.series)
        snaps: list[PreparedSnapshot] = []
        checked: IntP | None = None
        tail = 0
        for i, snap in enumerate(batch.snapshots):
            tail += _field_size(snap.ByteSize())
            idx = np.asarray(snap.series_index, dtype=np.intp)
            vals = np.asarray(snap.values, dtype=np.float64)
            if len(idx) != len(vals):
                raise InvalidRequestError(
                    f"batches[{b}].snapshots[{i}]: {len(idx)} series_index, {len(vals)} values"
                )
            if len(idx) and (checked is None or not np.array_equal(idx, checked)):
                if int(idx.max()) >= n or np.bincount(idx).max() > 1:
                    raise InvalidRequestError(
                        f"batches[{b}].snapshots[{i}].series_index: out of range or repeated"
                    )
                checked = idx
            snaps.append(PreparedSnapshot(snap.timestamp_ms, idx, vals, snap))
            newest = max(newest, snap.timestamp_ms)
        unsupported = [u.encode() for u in batch.unsupported]
        tail += sum(_field_size(len(u)) for u in unsupported)
        data = batch.SerializeToString()
        key = hashlib.blake2b(data[: len(data) - tail], digest_size=16)
        for u in unsupported:
            key.update(b"\x00" + u)
        batches.append(PreparedBatch(batch, key.digest(), snaps))
        parts += (b"\x0a", varint(len(data)), data)
    return Prepared(batches, b"".join(parts), newest)
