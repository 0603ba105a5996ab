"""Read timeouts uvicorn does not have: ``timeout_keep_alive`` only covers the idle time after
a response, so a client that opens a connection and sends its headers (or its body) a byte at
a time held a connection and a request for as long as it liked.

- Headers: ``timed_http_protocol`` gives uvicorn's httptools protocol a timer from the
  connection's (or the next request's) first byte to the end of the headers; when it fires the
  client gets ``408 Request Timeout`` and the connection is closed.
- Body: ``read_within`` is how the ingest paths and ``edge.BodyLimit`` read a body: all of it
  within ``body_timeout`` seconds of the request's start, else 408.

The same protocol also writes a response's head and body in one write (``coalesce``).
"""

from __future__ import annotations

import asyncio
import time
from asyncio import TimerHandle, Transport

from starlette.types import Message, Receive
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hostpulse.server.coalesce import CoalescingTransport

_BODY = b"request headers not received in time\n"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class BodyTimeout(Exception):
    """The body did not arrive within the deadline."""


class _TimedProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    _header_timer: TimerHandle | None = None

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        self._arm()

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # a HEAD answer's held head
        super().on_response_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # not inside another answer
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def timed_http_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a header timeout of ``header_timeout`` seconds."""
    return type("TimedHttpToolsProtocol", (_TimedProtocol,), {"header_timeout": header_timeout})


async def read_within(receive: Receive, deadline: float) -> Message:
    """The next ASGI message, BodyTimeout once ``deadline`` (time.monotonic()) has passed."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            return await receive()
    except TimeoutError:
        raise BodyTimeout from None
