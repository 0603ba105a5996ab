"""Protobuf base-128 varints, for the places that write or walk serialized messages by hand
(the agent's record encoder and body framing, the server's wire checks, the store's prepared
records, remote write, the simulator) instead of going through the generated classes."""

from __future__ import annotations


class VarintError(ValueError):
    """The bytes end inside a varint, or it is longer than 10 bytes."""


def encode(n: int) -> bytes:
    """``n`` (>= 0) as a varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode(data: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; VarintError when it does not end
    before ``end`` (the length of ``data`` when None) or is longer than 64 bits."""
    if end is None:
        end = len(data)
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise VarintError("truncated or malformed varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
