"""Encode and decode ingest bodies: protobuf or JSON (the protobuf JSON mapping), compressed with
gzip or zstd. Decompression is streamed with a cap, so a small body that expands without bound
(a decompression bomb) is refused after at most ``max_bytes`` of output."""

from __future__ import annotations

import gzip
import zlib
from types import ModuleType

import zstandard
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from hostpulse.protocol import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, IngestRequest

_inflate: ModuleType
try:  # the server extra's ISA-L inflate: zlib's API in half the time (55 -> 28 us for an
    # agent's 8 KB report; the ingest acceptor's largest single cost). An agent-only install
    # has zlib, and never decompresses a request body.
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - the server extra installs it
    _inflate = zlib

ENCODINGS: tuple[str, ...] = ("identity", "gzip", "zstd")
_CHUNK = 256 * 1024


class CodecError(ValueError):
    """The body cannot be turned into an IngestRequest; the message says why."""


class UnsupportedMediaType(CodecError):
    pass


class TooLarge(CodecError):
    pass


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The decompressed body; ``TooLarge`` once the output would exceed ``max_bytes``."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > max_bytes:
            raise TooLarge(f"body is {len(body)} bytes, the limit is {max_bytes}")
        return body
    if enc in ("gzip", "x-gzip"):
        return _gunzip(body, max_bytes)
    if enc == "zstd":
        return _unzstd(body, max_bytes)
    raise UnsupportedMediaType(
        f"Content-Encoding {encoding!r} is not supported (use one of {', '.join(ENCODINGS)})"
    )


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    d = _inflate.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        first: bytes = d.decompress(body, max_bytes + 1)
    except _inflate.error as exc:
        raise CodecError(f"gzip body is corrupt: {exc}") from None
    if d.eof and len(first) <= max_bytes:  # the whole body in one piece: no copies
        return first
    out = bytearray(first)
    if len(out) > max_bytes:
        raise TooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
    data = d.unconsumed_tail
    try:
        while data and not d.eof:
            out += d.decompress(data, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise TooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
            data = d.unconsumed_tail
            if d.eof:
                break
        if not d.eof:
            raise CodecError("gzip body is truncated")
    except _inflate.error as exc:
        raise CodecError(f"gzip body is corrupt: {exc}") from None
    return bytes(out)


def _unzstd(body: bytes, max_bytes: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(body)
    out = bytearray()
    try:
        while True:
            chunk = reader.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > max_bytes:
                raise TooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
        # The reader ends quietly where its input ends, also inside a frame, and stops after
        # the first frame. Its output is within the limit now, so decompressing the body once
        # more is bounded by it too, and that object says where the frame ended.
        check = zstandard.ZstdDecompressor().decompressobj()
        check.decompress(body)
    except zstandard.ZstdError as exc:
        raise CodecError(f"zstd body is corrupt: {exc}") from None
    if not check.eof:
        raise CodecError("zstd body is truncated")
    if check.unused_data:
        raise CodecError(
            f"zstd body has {len(check.unused_data)} bytes after its frame (send one frame)"
        )
    return bytes(out)


def parse(body: bytes, content_type: str | None) -> IngestRequest:
    """An IngestRequest from a decompressed body of the given content type."""
    kind = media_type(content_type)
    request = IngestRequest()
    if kind == PROTOBUF_CONTENT_TYPE:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise CodecError(f"malformed protobuf body: {exc}") from None
        return request
    if kind == JSON_CONTENT_TYPE:
        if not body.lstrip(b" \t\r\n").startswith(b"{"):
            # json_format.Parse takes a top-level list or scalar as an empty request
            raise CodecError('malformed JSON body: expected an object ({"batches": [...]})')
        try:
            json_format.Parse(body, request)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise CodecError(f"malformed JSON body: {exc}") from None
        return request
    raise UnsupportedMediaType(
        f"Content-Type {content_type!r} is not supported "
        f"(use {PROTOBUF_CONTENT_TYPE} or {JSON_CONTENT_TYPE})"
    )


def encode(request: IngestRequest, *, json: bool = False, encoding: str = "gzip") -> bytes:
    """The body for ``request`` (the inverse of ``decompress`` + ``parse``)."""
    raw = (
        json_format.MessageToJson(request, indent=None).encode()
        if json
        else request.SerializeToString()
    )
    if encoding == "gzip":
        return gzip.compress(raw, compresslevel=1)
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=1).compress(raw)
    if encoding == "identity":
        return raw
    raise ValueError(f"unknown encoding {encoding!r}")
