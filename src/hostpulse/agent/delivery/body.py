"""The gzip request body for one spooled snapshot, without compressing it a second time.

A spooled record is its ``HostBatch`` compressed with zlib (``record.py``). A request
carrying just that snapshot (the steady state: one snapshot per interval) is the
``IngestRequest`` ``{batches: [batch]}``, i.e. a 2-6 byte field header followed by the batch's
bytes. Instead of decompressing, re-serializing and gzipping it again (half the agent's CPU per
collection with 20 containers), the body is spliced: a gzip header, the field header as a stored
(uncompressed, non-final) deflate block, the record's own deflate blocks, and the gzip trailer
(CRC-32 and length of the whole). That is one valid gzip member, exactly what ``gzip.compress``
of the request decompresses to. The CRC-32 needs the batch's bytes: the shipper passes the
checksum the encoder computed (``record.Encoded``), otherwise the record is decompressed.
"""

from __future__ import annotations

import struct
import zlib

from hostpulse.protocol import varint

_ZLIB = b"\x01"  # shipper's record kind: zlib stream
_BATCHES_FIELD = b"\x0a"  # IngestRequest.batches: field 1, length-delimited
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown


def request_prefix(size: int) -> bytes:
    """What comes before a batch of ``size`` bytes in an IngestRequest holding only it."""
    return _BATCHES_FIELD + varint.encode(size)


def gzip_request_for(payload: bytes, checksum: tuple[int, int] | None = None) -> bytes | None:
    """The gzip body of an IngestRequest holding only this record's batch; None when the record
    is not a plain zlib stream (then the caller encodes the request the ordinary way).
    ``checksum``: (CRC-32 of the request, i.e. of ``request_prefix(length)`` and the batch's
    bytes; the length of the batch's bytes) when known, else the record is decompressed for
    them (which also checks its Adler-32)."""
    if payload[:1] != _ZLIB or len(payload) < 7:
        return None
    stream = payload[1:]
    cmf, flg = stream[0], stream[1]
    if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31 or flg & 0x20:  # deflate, valid, no dictionary
        return None
    if checksum is None:
        raw = zlib.decompress(stream)  # checks the record (its Adler-32)
        checksum = zlib.crc32(raw, zlib.crc32(request_prefix(len(raw)))), len(raw)
    crc, raw_size = checksum
    prefix = request_prefix(raw_size)
    stored = b"\x00" + struct.pack("<HH", len(prefix), len(prefix) ^ 0xFFFF) + prefix
    size = (len(prefix) + raw_size) & 0xFFFFFFFF
    return _GZIP_HEADER + stored + stream[2:-4] + struct.pack("<II", crc, size)
