"""The messages replicas exchange about acknowledged ingest requests. A batch message: its origin
and, per host batch, the host id, the series-table signature and the batch's protobuf bytes
(the receiver reads host ids without decoding a batch). Fleet summaries and alert events: the
origin, then the protobuf bytes (``tag``).

Layout (big-endian): ``b"HPB1"``, origin (16 bytes), batch count (u16), then per batch: host
id length (u16) and UTF-8 bytes, signature length (u16) and bytes, batch length (u32) and
bytes."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from hostpulse.protocol import HostBatch, IngestRequest

MAGIC = b"HPB1"
ORIGIN_BYTES = 16
_HEAD = struct.Struct(">4s16sH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class WireError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Part:
    host_id: str
    signature: bytes
    data: bytes

    def batch(self) -> HostBatch:
        return HostBatch.FromString(self.data)


def parts_of(request: IngestRequest, signatures: Sequence[bytes]) -> list[Part]:
    """Each batch of ``request`` serialized once, to be sent in one message or several."""
    return [
        Part(batch.host.host_id, signature, batch.SerializeToString())
        for batch, signature in zip(request.batches, signatures, strict=True)
    ]


def encode_parts(origin: bytes, parts: Sequence[Part]) -> bytes:
    out = [_HEAD.pack(MAGIC, origin, len(parts))]
    for part in parts:
        host = part.host_id.encode()
        out += [_U16.pack(len(host)), host, _U16.pack(len(part.signature)), part.signature]
        out += [_U32.pack(len(part.data)), part.data]
    return b"".join(out)


def encode(origin: bytes, request: IngestRequest, signatures: Sequence[bytes]) -> bytes:
    return encode_parts(origin, parts_of(request, signatures))


def tag(origin: bytes, payload: bytes) -> bytes:
    """A message of the fleet and alert channels: the origin, then ``payload``."""
    return origin + payload


def untag(message: bytes) -> tuple[bytes, bytes]:
    if len(message) < ORIGIN_BYTES:
        raise WireError("truncated message")
    return message[:ORIGIN_BYTES], message[ORIGIN_BYTES:]


def decode(message: bytes) -> tuple[bytes, list[Part]]:
    """(origin, parts); WireError for anything else (a message of another version)."""
    try:
        magic, origin, count = _HEAD.unpack_from(message, 0)
        if magic != MAGIC:
            raise WireError("not a hostpulse batch message")
        pos = _HEAD.size
        parts = []
        for _ in range(count):
            (n,) = _U16.unpack_from(message, pos)
            host = message[pos + 2 : pos + 2 + n].decode()
            pos += 2 + n
            (n,) = _U16.unpack_from(message, pos)
            signature = message[pos + 2 : pos + 2 + n]
            pos += 2 + n
            (n,) = _U32.unpack_from(message, pos)
            data = message[pos + 4 : pos + 4 + n]
            if len(data) != n:
                raise WireError("truncated batch message")
            pos += 4 + n
            parts.append(Part(host, signature, data))
    except (struct.error, UnicodeDecodeError) as exc:
        raise WireError(f"malformed batch message: {exc}") from None
    return origin, parts
