"""The ingest fast path: a small ASGI middleware that answers ``POST /api/v1/ingest`` itself.

Ingest is the one route that runs hundreds of times a second; going through the framework's
routing, dependency solving and response classes cost about a third of the CPU of a 500-sample
request (measured with py-spy). The FastAPI route in ``api/ingest.py`` stays the documented
one (OpenAPI) and behaves identically; both read the body with ``body.read_body`` and call
``IngestService.ingest_body``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from hostpulse.server.auth.ingest_guard import IngestDenied, ingest_host
from hostpulse.server.ingest.body import read_body
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.state import AppState

INGEST_PATH = "/api/v1/ingest"
_JSON = [(b"content-type", b"application/json")]


class IngestFastPath:
    def __init__(self, app: ASGIApp, path: str = INGEST_PATH) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.hp
        headers = {k: v for k, v in scope["headers"]}
        limit = state.ingest.limits.max_body_bytes
        try:  # the same key + host check as the route (auth/ingest_guard.py)
            host_id = await ingest_host(scope["app"].state, headers.get(b"authorization"))
        except IngestDenied as exc:
            await _answer(send, exc.status, {"detail": exc.reason}, exc.headers)
            return
        try:
            deadline = time.monotonic() + state.settings.body_timeout
            body = await read_body(receive, headers.get(b"content-length"), limit, deadline)
            if body is None:  # the client went away
                return
            result = await state.ingest.ingest_body(
                body,
                _text(headers.get(b"content-type")),
                _text(headers.get(b"content-encoding")),
                only_host=host_id,
            )
        except IngestError as exc:
            await _answer(send, exc.status, {"detail": exc.reason}, exc.headers)
            return
        await _answer(
            send,
            200,
            {"accepted_samples": result.accepted, "duplicate_samples": result.duplicates},
        )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _answer(
    send: Send, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    body = orjson.dumps(payload)
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
