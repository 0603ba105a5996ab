"""What every HTTP answer goes through before the routes: the CORS allow-list, the body size
limit of the JSON API, ``X-Content-Type-Options`` on everything and HSTS over TLS; and how a
request that fails validation is answered (422 without echoing what was sent).

Plain ASGI middlewares (no per-request framework objects): ingest runs through them hundreds of
times a second. The dashboard's own headers (CSP and friends) are set in ``static.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hostpulse.server.timeouts import BodyTimeout, read_within
from hostpulse.server.tls import HSTS

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_FRAMING = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]
"""On every HTML answer that has no policy of its own (``/docs``, ``/redoc``): no other site
may frame it (clickjacking)."""
_HSTS = (b"strict-transport-security", HSTS.encode())
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_HEADERS = ["Authorization", "Content-Type", "Content-Encoding", "Accept", "Accept-Language"]


def parse_origins(value: object) -> list[str]:
    """``"https://a.example, http://b.example:8080"`` or a list of them -> the list, each
    checked to be ``scheme://host[:port]`` (what a browser sends in ``Origin``)."""
    if value is None:
        return []
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError("expected a comma-separated list of origins like https://ops.example.com")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not an origin like https://ops.example.com")
        origin = item.strip().rstrip("/")
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "*" in origin
        ):
            raise ValueError(
                f"{item!r} is not an origin: give scheme://host[:port] exactly, "
                "e.g. https://ops.example.com (no path, no wildcard)"
            )
        out.append(origin)
    return out


class EdgeHeaders:
    """``X-Content-Type-Options: nosniff`` on every answer; ``Strict-Transport-Security`` on
    those served over TLS; ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` on
    HTML answers that do not set them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [NOSNIFF, _HSTS] if scope.get("scheme") == "https" else [NOSNIFF]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower(): v for k, v in headers}
                added = list(extra)
                if present.get(b"content-type", b"").lower().startswith(b"text/html"):
                    added += NO_FRAMING
                headers.extend(h for h in added if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def answer(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON ``{"detail": ...}`` answer straight from a middleware."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body over ``limit`` bytes, on every path but ``exempt`` (ingest has
    its own, larger limits and its own deadline). A declared ``Content-Length`` is checked
    before anything is read; a body is read whole (up to the limit) within ``timeout`` seconds
    (408 after: a client sending it a byte at a time holds nothing for long), then handed on."""

    def __init__(
        self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = (), timeout: float = 60.0
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None:
            if not declared.isdigit():
                await answer(send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.limit:
                await answer(send, 413, self._reason(int(declared)))
                return
        if (chunked and declared is None) or (declared is not None and int(declared) > 0):
            messages: list[Message] = []
            total = 0
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    message = await read_within(receive, deadline)
                except BodyTimeout:
                    await answer(send, 408, "the body did not arrive in time (body_timeout)")
                    return
                messages.append(message)
                if message["type"] != "http.request":
                    break
                total += len(message.get("body", b""))
                if total > self.limit:
                    await answer(send, 413, self._reason(None))
                    return
                if not message.get("more_body", False):
                    break
            queued = iter(messages)

            async def replay() -> Message:
                return next(queued, None) or await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    def _reason(self, size: int | None) -> str:
        sent = f"body is {size} bytes" if size is not None else "body exceeds the limit"
        return f"{sent}, the limit is {self.limit} bytes (max_api_body_bytes)"


_PROBLEM = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "Why it was refused."}},
    "required": ["detail"],
}
BODY_ERRORS = {
    "400": "The body is not valid JSON (or not the declared media type).",
    "408": "The body did not arrive within body_timeout seconds.",
    "413": "The body is larger than the limit (max_api_body_bytes; ingest: max_body_bytes).",
}


AUTH_ERRORS = {
    "401": "Not signed in: no, an expired or an invalid token or agent key.",
    "403": "Signed in, but this role or key may not do this.",
    "429": "Too many requests from this user or key; send again after Retry-After seconds.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def _problem(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": _PROBLEM}}}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the document say what the server answers: every operation with a body can get 400
    (a body that cannot be parsed) and 413 (over the size limit) before its route runs; and a
    422's ``detail`` is either the framework's list of field errors or one sentence (what the
    routes raise for checks a schema cannot express). Every operation that takes a bearer token
    can get 401, 403 and 429 (with Retry-After) from the authentication in front of it."""
    errors = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
    if errors is not None:
        listed = errors["properties"]["detail"]
        errors["properties"]["detail"] = {
            "anyOf": [listed, {"type": "string"}],
            "title": "Detail",
            "description": "The invalid fields, or why the request is invalid.",
        }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "security" in operation:
                for code, text in AUTH_ERRORS.items():
                    responses.setdefault(code, _problem(text))
                responses["429"].setdefault("headers", _RETRY_AFTER)
            if "requestBody" in operation:
                for code, text in BODY_ERRORS.items():
                    responses.setdefault(code, _problem(text))
    return schema


def install_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def validation_failed(_request: Request, exc: Exception) -> JSONResponse:
    """422 with each error's ``loc``, ``msg``, ``type`` and ``ctx`` but not the framework's
    ``input`` echo: that would send back a refused password, a channel's secret, or a NaN
    or Infinity a lenient JSON parser read (which JSON cannot carry: the answer became a 500)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{k: v for k, v in error.items() if k != "input"} for error in errors]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


def install(
    app: FastAPI,
    *,
    cors_origins: list[str],
    max_api_body: int,
    ingest_path: str,
    body_timeout: float = 60.0,
) -> None:
    """Add the edge middlewares (call after the others: these wrap them all)."""
    app.add_middleware(BodyLimit, limit=max_api_body, exempt=(ingest_path,), timeout=body_timeout)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=["Retry-After"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(EdgeHeaders)
    app.add_exception_handler(RequestValidationError, validation_failed)
    install_openapi(app)
