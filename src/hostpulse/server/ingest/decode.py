"""Reading a request body: decompress, parse (large protobuf bodies in pieces, ``wire``) and
the count bounds of the parsed request."""

from __future__ import annotations

from dataclasses import dataclass

from hostpulse.protocol import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, IngestRequest, codec
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.server.ingest.wire import PIECE_BYTES, OverLimit, WireError, parse_large
from hostpulse.server.ingest.wire import Limits as WireLimits


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
    the wire level before it is parsed (``wire``). Unknown fields are dropped, so what
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
