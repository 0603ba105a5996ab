"""The on-disk format of the spool: segment files of checksummed, length-prefixed records.

A segment is named ``<base seq, 20 digits>.seg`` and starts with a 16-byte header (magic
``HPSPOOL1`` + the base sequence number, little-endian). Records follow back to back::

    magic "HPr1" | payload length u32 | crc32 u32 | seq u64 | timestamp ms i64 | payload

The CRC covers the length, the sequence, the timestamp and the payload, so a flipped bit
anywhere in a record, a torn write or a wrong length is detected. The per-record magic lets a
reader find the next intact record after a damaged region (resynchronisation) instead of
giving up on the rest of the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEGMENT_MAGIC = b"HPSPOOL1"
SEGMENT_HEADER = struct.Struct("<8sQ")
RECORD_MAGIC = b"HPr1"
RECORD_HEADER = struct.Struct("<4sIIQq")
MAX_PAYLOAD = 64 * 1024 * 1024
SUFFIX = ".seg"


def segment_name(base: int) -> str:
    return f"{base:020d}{SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    stem, dot, suffix = name.partition(".")
    if f"{dot}{suffix}" != SUFFIX or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def encode_segment_header(base: int) -> bytes:
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, base)


def _crc(length: int, seq: int, ts_ms: int, payload: bytes | memoryview) -> int:
    head = struct.pack("<IQq", length, seq, ts_ms)
    return zlib.crc32(payload, zlib.crc32(head)) & 0xFFFFFFFF


def encode_record(seq: int, ts_ms: int, payload: bytes) -> bytes:
    n = len(payload)
    return RECORD_HEADER.pack(RECORD_MAGIC, n, _crc(n, seq, ts_ms, payload), seq, ts_ms) + payload


@dataclass(frozen=True, slots=True)
class RecordHeader:
    seq: int
    ts_ms: int
    length: int  # payload bytes
    offset: int  # where the record starts in its segment

    @property
    def end(self) -> int:
        return self.offset + RECORD_HEADER.size + self.length


def read_header(fd: int, offset: int, limit: int) -> RecordHeader | None:
    """The header of the record at ``offset`` without checking its CRC (used only on records
    that were verified when written or recovered); None at ``limit``."""
    if offset + RECORD_HEADER.size > limit:
        return None
    raw = os.pread(fd, RECORD_HEADER.size, offset)
    magic, length, _crc_value, seq, ts_ms = RECORD_HEADER.unpack(raw)
    if magic != RECORD_MAGIC or offset + RECORD_HEADER.size + length > limit:
        return None
    return RecordHeader(seq, ts_ms, length, offset)


def read_payload(fd: int, header: RecordHeader) -> bytes:
    return os.pread(fd, header.length, header.offset + RECORD_HEADER.size)


@dataclass(slots=True)
class ScanResult:
    """What a full check of one segment file found."""

    base: int
    header_ok: bool
    records: list[RecordHeader]
    size: int
    damaged_bytes: int  # bytes not part of an intact record (headers, garbage, torn tails)
    damaged_regions: int
    trailing_damage: bool  # the file ends in bytes that are not an intact record


def _verify_at(data: bytes, offset: int) -> RecordHeader | None:
    if offset + RECORD_HEADER.size > len(data):
        return None
    magic, length, crc, seq, ts_ms = RECORD_HEADER.unpack_from(data, offset)
    if magic != RECORD_MAGIC or length > MAX_PAYLOAD:
        return None
    start = offset + RECORD_HEADER.size
    if start + length > len(data):
        return None
    if _crc(length, seq, ts_ms, memoryview(data)[start : start + length]) != crc:
        return None
    return RecordHeader(seq, ts_ms, length, offset)


def scan_segment(path: Path, base: int) -> ScanResult:
    """Every intact record of a segment, in file order; damaged regions are skipped by looking
    for the next record magic whose CRC checks and whose sequence keeps increasing."""
    data = path.read_bytes()
    size = len(data)
    if size < SEGMENT_HEADER.size or SEGMENT_HEADER.unpack_from(data, 0) != (SEGMENT_MAGIC, base):
        return ScanResult(base, False, [], size, size, 1 if size else 0, size > 0)
    records: list[RecordHeader] = []
    offset = SEGMENT_HEADER.size
    damaged = regions = 0
    last_seq = -1
    trailing = False
    while offset < size:
        rec = _verify_at(data, offset)
        if rec is not None and rec.seq > last_seq:
            records.append(rec)
            last_seq = rec.seq
            offset = rec.end
            continue
        regions += 1
        nxt = _resync(data, offset + 1, last_seq)
        if nxt is None:
            damaged += size - offset
            trailing = True
            break
        damaged += nxt - offset
        offset = nxt
    return ScanResult(base, True, records, size, damaged, regions, trailing)


def _resync(data: bytes, start: int, last_seq: int) -> int | None:
    pos = start
    while True:
        pos = data.find(RECORD_MAGIC, pos)
        if pos < 0:
            return None
        rec = _verify_at(data, pos)
        if rec is not None and rec.seq > last_seq:
            return pos
        pos += 1


def iter_payloads(path: Path, records: list[RecordHeader]) -> Iterator[bytes]:
    with path.open("rb") as f:
        for rec in records:
            f.seek(rec.offset)
            yield f.read(RECORD_HEADER.size + rec.length)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_segment(path: Path, base: int, records: list[RecordHeader]) -> int:
    """Replace a damaged segment with its intact records only (atomically); the new size."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(encode_segment_header(base))
        for raw in iter_payloads(path, records):
            out.write(raw)
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    tmp.replace(path)
    fsync_dir(path.parent)
    return size
