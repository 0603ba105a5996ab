"""The outermost ASGI app uvicorn serves (``server/run.py``): the two requests that run
hundreds of times a second answered before the middleware stack.

Every middleware wraps ``send`` and adds a coroutine per request: FastAPI's telemetry and
body-limit layers, Starlette's error handler, the request metrics, the edge headers and the
API body limit cost 120-200 us of CPU per request on a 2-core server (py-spy), a fifth of an
agent's 500-sample ingest and a quarter of a dashboard's repeated history read. ``Front``
answers these itself and does what the stack would have done for them:

- ``POST /api/v1/ingest`` from an agent: ``ingest.fastpath.handle``;
- ``GET /api/v1/hosts/{id}/metrics/{metric}/history`` without a body:
  ``api.metrics.answer_history``, which leaves any request the route should judge (a
  parameter it does not know, repeated or malformed) to the stack, untouched;
- the request metrics (``SelfMetrics.observe``), and ``X-Content-Type-Options: nosniff``
  (+ ``Strict-Transport-Security`` over TLS) on their answers.

A request with an ``Origin`` header (a browser's, which CORS may have to answer) and
everything else go through the stack. ``IngestFastPath`` and ``HistoryFastPath`` answer the
same requests as middlewares inside the app, for an app served another way (tests on an ASGI
transport, ``create_app`` without ``run.py``).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Receive, Scope, Send

from hostpulse.server.api.metrics import answer_history
from hostpulse.server.edge import NOSNIFF
from hostpulse.server.ingest.fastpath import INGEST_PATH, handle
from hostpulse.server.tls import HSTS

_EDGE = [NOSNIFF]
_EDGE_TLS = [NOSNIFF, (b"strict-transport-security", HSTS.encode())]
_HISTORY_END = "/history"


class Front:
    def __init__(self, app: Any, ingest_path: str = INGEST_PATH) -> None:
        self.app = app
        self.ingest_path = ingest_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        started = time.perf_counter()
        edge = _EDGE_TLS if scope.get("scheme") == "https" else _EDGE
        if method == "POST" and path == self.ingest_path and _plain(scope["headers"], True):
            status = 500  # as the metrics middleware counts an answer that never started
            try:
                status = await handle(self.app.state, scope, receive, send, edge)
            finally:
                self.app.state.selfmetrics.observe(path, status, time.perf_counter() - started)
            return
        if method == "GET" and path.endswith(_HISTORY_END) and _plain(scope["headers"], False):
            answered: int | None = 500
            try:
                answered = await answer_history(self.app, scope, receive, send, edge)
            finally:
                if answered is not None:
                    self.app.state.selfmetrics.observe(
                        path, answered, time.perf_counter() - started
                    )
            if answered is not None:
                return
        await self.app(scope, receive, send)


def _plain(headers: list[tuple[bytes, bytes]], body: bool) -> bool:
    """Not a browser's request (no ``Origin``: CORS may have to answer it), and, unless
    ``body``, without a body (no ``transfer-encoding``, no ``content-length`` but 0: the
    stack's body limits judge those)."""
    for name, value in headers:
        if name == b"origin":
            return False
        if not body and (
            name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
        ):
            return False
    return True
