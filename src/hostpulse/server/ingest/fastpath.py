"""The ingest fast path: ``POST /api/v1/ingest`` answered without the framework.

Ingest is the one route that runs hundreds of times a second; going through the framework's
routing, dependency solving and response classes cost about a third of the CPU of a 500-sample
request (measured with py-spy). The FastAPI route in ``api/ingest.py`` stays the documented
one (OpenAPI) and behaves identically; both read the body with ``body.read_body`` and call
``IngestService.ingest_body``.

Two ways in, one handler (``handle``):

- ``server/front.py``'s ``Front``, the ASGI app uvicorn serves (``server/run.py``), answers
  an agent's ingest before the middleware stack, which cost another 120-200 us per
  500-sample request (15-20 % of its CPU), and does what the stack would have done for it.
- ``IngestFastPath`` is the same as a middleware inside the app, for an app served another
  way (tests on an ASGI transport, ``create_app`` without ``run.py``).
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
        await handle(scope["app"].state, scope, receive, send, [])


async def handle(
    app_state: Any, scope: Scope, receive: Receive, send: Send, edge: list[tuple[bytes, bytes]]
) -> int:
    """Answer one ingest request; the status sent (500 when the client went away first)."""
    state: AppState = app_state.hp
    headers = {k: v for k, v in scope["headers"]}
    limit = state.ingest.limits.max_body_bytes
    try:  # the same key + host check as the route (auth/ingest_guard.py)
        host_id = await ingest_host(app_state, headers.get(b"authorization"))
    except IngestDenied as exc:
        return await _answer(send, exc.status, {"detail": exc.reason}, edge, exc.headers)
    try:
        deadline = time.monotonic() + state.settings.body_timeout
        body = await read_body(receive, headers.get(b"content-length"), limit, deadline)
        if body is None:  # the client went away
            return 500
        result = await state.ingest.ingest_body(
            body,
            _text(headers.get(b"content-type")),
            _text(headers.get(b"content-encoding")),
            only_host=host_id,
        )
    except IngestError as exc:
        return await _answer(send, exc.status, {"detail": exc.reason}, edge, exc.headers)
    return await _answer(
        send,
        200,
        {"accepted_samples": result.accepted, "duplicate_samples": result.duplicates},
        edge,
    )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _answer(
    send: Send,
    status: int,
    payload: dict[str, Any],
    edge: list[tuple[bytes, bytes]],
    extra: dict[str, str] | None = None,
) -> int:
    body = orjson.dumps(payload)
    headers = [*_JSON, (b"content-length", str(len(body)).encode()), *edge]
    if extra:
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status
