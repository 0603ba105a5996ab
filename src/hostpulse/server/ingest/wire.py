"""Reading a large protobuf ingest body without holding the interpreter for long.

One ``ParseFromString`` of a 60 MB body runs in C without letting other threads in; the event
loop would wait for it. So a large body is first walked at the wire level (no objects built)
to count its batches, series definitions and snapshots, which refuses an over-limit request
before any parsing, and then parsed piece by piece: each batch, and within a large batch each
run of consecutive fields of about ``PIECE_BYTES``, is merged into the message with its own
call. Protobuf defines parsing a concatenation as merging its parts, so the result equals one
``ParseFromString`` of the whole body; unknown fields of the request itself are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostpulse.protocol import IngestRequest, varint

PIECE_BYTES = 256 * 1024
"""Bodies up to this size are parsed in one call (about a millisecond)."""


class WireError(ValueError):
    """The body is not well-formed protobuf."""


@dataclass(frozen=True, slots=True)
class WireCounts:
    batches: int
    series_defs: int
    snapshots: int


class OverLimit(Exception):
    """A count of the body is over its bound; ``field`` names it."""

    def __init__(self, field: str, count: int, limit: int, setting: str) -> None:
        super().__init__(f"{field}: more than {limit} ({setting})")
        self.field = field
        self.count = count
        self.limit = limit
        self.setting = setting


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    try:
        return varint.decode(data, pos, end)
    except varint.VarintError as exc:
        raise WireError(str(exc)) from None


def _skip(data: bytes, wire: int, pos: int, end: int) -> int:
    """The position after a field's value of wire type ``wire`` starting at ``pos``."""
    if wire == 0:
        return _varint(data, pos, end)[1]
    if wire == 1:
        pos += 8
    elif wire == 2:
        size, pos = _varint(data, pos, end)
        pos += size
    elif wire == 5:
        pos += 4
    else:
        raise WireError(f"unsupported wire type {wire}")
    if pos > end:
        raise WireError("field runs past the end of its message")
    return pos


def batch_bytes(data: bytes) -> list[bytes] | None:
    """Each batch of a serialized IngestRequest as its own bytes (what the batch's
    ``SerializeToString`` gives when ``data`` is itself a ``SerializeToString``), without
    parsing; None when ``data`` holds a field other than the batches or is not well-formed."""
    out: list[bytes] = []
    view = memoryview(data)
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _varint(data, pos, end)
            if tag != 0x0A:  # field 1 (batches), length-delimited
                return None
            size, pos = _varint(data, pos, end)
            if pos + size > end:
                return None
            out.append(bytes(view[pos : pos + size]))
            pos += size
    except WireError:
        return None
    return out


_FIELD_BYTES = {
    1: ("host", 256 * 1024),
    2: ("series definition", 8 * 1024),
    3: ("snapshot", 8 << 20),
}
"""The largest serialized host, series definition and snapshot of a batch: far above what the
other bounds let through (a series has at most a few labels of 1024 characters, a snapshot at
most max_series_per_host values and two process lists), so only a body meant to stall the
parser meets them."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_batches: int
    max_series_per_batch: int
    max_series_defs: int
    max_snapshots: int


def _batch_pieces(
    data: bytes, start: int, end: int, seen: list[int], limits: Limits
) -> list[tuple[int, int]]:
    """Split one serialized HostBatch into runs of whole fields; counts series and snapshots
    into ``seen`` ([series_defs, snapshots]) as it goes, raising OverLimit at once."""
    pieces: list[tuple[int, int]] = []
    piece = pos = start
    series = 0
    while pos < end:
        key, value = _varint(data, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 2 and field in _FIELD_BYTES:
            size = _varint(data, value, end)[0]
            name, cap = _FIELD_BYTES[field]
            if size > cap:
                raise OverLimit(f"one {name}", size, cap, "fixed, in bytes")
        if field == 2 and wire == 2:
            series += 1
            seen[0] += 1
            if series > limits.max_series_per_batch:
                raise OverLimit(
                    "series of one batch",
                    series,
                    limits.max_series_per_batch,
                    "max_series_per_host",
                )
            if seen[0] > limits.max_series_defs:
                raise OverLimit(
                    "series definitions", seen[0], limits.max_series_defs, "max_series_defs"
                )
        elif field == 3 and wire == 2:
            seen[1] += 1
            if seen[1] > limits.max_snapshots:
                raise OverLimit("snapshots", seen[1], limits.max_snapshots, "max_snapshots")
        pos = _skip(data, wire, value, end)
        if pos - piece >= PIECE_BYTES:
            pieces.append((piece, pos))
            piece = pos
    if pos != end:
        raise WireError("a batch's last field runs past its end")
    if piece < end or not pieces:
        pieces.append((piece, end))
    return pieces


def parse_large(data: bytes, limits: Limits) -> IngestRequest:
    """Parse an IngestRequest in pieces (see the module docstring); OverLimit as soon as a
    count is over its bound, WireError for a malformed body."""
    batches: list[list[tuple[int, int]]] = []
    seen = [0, 0]
    pos, end = 0, len(data)
    while pos < end:
        key, value = _varint(data, pos, end)
        field, wire = key >> 3, key & 7
        if field == 1 and wire == 2:
            size, body = _varint(data, value, end)
            stop = body + size
            if stop > end:
                raise WireError("a batch runs past the end of the body")
            if len(batches) >= limits.max_batches:
                raise OverLimit("batches", len(batches) + 1, limits.max_batches, "max_batches")
            batches.append(_batch_pieces(data, body, stop, seen, limits))
            pos = stop
        else:
            pos = _skip(data, wire, value, end)
    request = IngestRequest()
    for pieces in batches:
        batch = request.batches.add()
        for lo, hi in pieces:
            batch.MergeFromString(data[lo:hi])
    return request
