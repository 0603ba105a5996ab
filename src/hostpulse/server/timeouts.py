"""Read timeouts uvicorn does not have: ``timeout_keep_alive`` only covers the idle time after
a response, so a client that opens a connection and sends its headers (or its body) a byte at
a time held a connection and a request for as long as it liked.

- Headers: ``timed_http_protocol`` gives uvicorn's httptools protocol a timer from the
  connection's start (or the end of the first chunk of the next request on it, when its
  headers are not all in that chunk) to the end of the headers; when it fires the client gets
  ``408 Request Timeout`` and the connection is closed.
- Body: ``read_within`` is how the ingest paths and ``edge.BodyLimit`` read a body: all of it
  within ``body_timeout`` seconds of the request's start, else 408.

The same protocol also writes a response's head and body in one write (``coalesce``).
"""

from __future__ import annotations

import asyncio
import time
from asyncio import TimerHandle, Transport
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType
from typing import Any

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
    _headers_pending = False  # a request has begun and its headers are not complete

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        self._arm()

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # a HEAD answer's held head
        super().on_response_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # a request whose headers are not all here yet is timed from now; one whose headers
        # came whole in this chunk (nearly every one) needs no timer (a timer armed and
        # cancelled per request cost as much as the rest of this class)
        if self._headers_pending and self._header_timer is None and not self.transport.is_closing():
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_pending = True

    def on_headers_complete(self) -> None:
        self._headers_pending = False
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
    """The next ASGI message, BodyTimeout once ``deadline`` (time.monotonic()) has passed.

    A message that is there already (an agent's body usually arrives with its headers) is
    taken without arming a timer: ``receive()`` is stepped once and, when it returns without
    waiting, that is the answer (a timer per request was about 1 % of the ingest CPU). When it
    has to wait, the rest of the same call is awaited under the timeout, as before; a message
    that is there is taken even once the deadline has passed, as ``asyncio.timeout`` did."""
    call = receive()
    if type(call) is not CoroutineType:  # another kind of awaitable: under the timer
        return await _timed(call, deadline)
    try:
        waiting = call.send(None)
    except StopIteration as done:
        message: Message = done.value
        return message
    except BaseException:
        call.close()
        raise
    return await _timed(_Resumed(call, waiting), deadline)


async def _timed(message: Awaitable[Message], deadline: float) -> Message:
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            return await message
    except TimeoutError:
        raise BodyTimeout from None


class _Resumed:
    """The rest of a coroutine that was stepped once and yielded ``waiting`` (what an awaited
    future yields to the task): awaiting this hands ``waiting`` to the task, then runs the
    coroutine to its end, as a plain ``await`` would have."""

    __slots__ = ("_call", "_waiting")

    def __init__(self, call: Coroutine[Any, Any, Message], waiting: Any) -> None:
        self._call = call
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Message]:
        call, out = self._call, self._waiting
        self._waiting = None
        while True:
            try:
                sent = yield out
            except GeneratorExit:
                call.close()
                raise
            except BaseException as exc:  # the task's cancellation (the timeout) goes in
                try:
                    out = call.throw(exc)
                except StopIteration as done:
                    result: Message = done.value
                    return result
            else:
                try:
                    out = call.send(sent)
                except StopIteration as done:
                    result = done.value
                    return result
