"""Reading an ingest body within its size and time bounds: the one reader of the ASGI fast path
and the FastAPI route."""

from __future__ import annotations

from starlette.types import Receive

from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.timeouts import BodyTimeout, read_within


async def read_body(
    receive: Receive, declared: bytes | str | None, limit: int, deadline: float
) -> bytes | None:
    """The whole body, or None when the client went away first. IngestError 400 (a
    Content-Length that is not a number), 413 (declared or sent over ``limit`` bytes) or 408
    (not all there by ``deadline``, a ``time.monotonic()`` instant)."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise IngestError(400, "Content-Length is not a number") from None
        if size > limit:
            raise IngestError(413, f"body is {size} bytes, the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            message = await read_within(receive, deadline)
        except BodyTimeout:
            raise IngestError(
                408, "the body did not arrive in time (body_timeout); nothing was stored"
            ) from None
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise IngestError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
