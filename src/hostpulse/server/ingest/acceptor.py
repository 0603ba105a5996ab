"""An ingest acceptor process: agents' connections read on another core.

With ``ingest_acceptors`` set, the server process does not accept connections itself: its
acceptor processes accept them from the listening socket they inherit (the kernel gives each
connection to one of them) and read the requests on them.

- ``POST /api/v1/ingest`` in the simple form agents send (HTTP/1.1, a ``Content-Length``,
  no ``Origin``, ``Transfer-Encoding``, ``Expect`` or ``Upgrade``): the acceptor reads the
  body within the server's bounds, decompresses, parses and checks it with the same code as
  the server process (``worker.answer``: the same IngestError status and reason) and sends
  the result to the server process, which authenticates the key, admits, stores and answers
  (``acceptors.py``); the acceptor writes that answer to the agent.
- Any other request (the dashboard, the API, WebSockets, a request this reader does not
  take): the connection is handed to the server process (``socket.send_fds``) with the bytes
  read from it so far, at a request boundary, and uvicorn serves it there as if it had
  accepted it.

``main([_, LISTEN_FD, CHANNEL_FD, HANDOVER_FD, CONFIG_JSON])``; CONFIG_JSON holds the ingest
limits, ``prepare``, ``header_timeout``, ``body_timeout`` and ``keep_alive``. Frames on the
channel are ``worker.frame``s: to the server ``(id, started, authorization, size, answer)``
(``answer`` as ``worker.answer`` makes it; ``started`` a ``time.monotonic()`` instant, the
same clock in every process), back ``(id, status, body, headers)``. The acceptor exits when
the channel closes (the server stopped or died): no orphans.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from hostpulse.server.ingest.checker import Checker
from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.server.ingest.worker import REFUSED, answer, frame, take_frames

logger = logging.getLogger(__name__)

INGEST_LINE = b"POST /api/v1/ingest HTTP/1.1\r\n"
MAX_HEAD = 16 * 1024
"""A head longer than this is handed to the server process (uvicorn judges it)."""

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HANDED = frozenset({b"origin", b"transfer-encoding", b"expect", b"upgrade"})
"""Headers that send the request to the server process: CORS, chunked bodies, 100-continue
and protocol upgrades are uvicorn's to answer."""

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    408: b"Request Timeout",
    413: b"Request Entity Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Entity",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
_HEADER_TIMEOUT_BODY = b"request headers not received in time\n"
_HEADER_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: "
    + str(len(_HEADER_TIMEOUT_BODY)).encode()
    + b"\r\n\r\n"
    + _HEADER_TIMEOUT_BODY
)


class Head:
    """The parts of a request head the acceptor uses."""

    __slots__ = ("authorization", "close", "content_type", "encoding", "length")

    def __init__(self) -> None:
        self.close = False
        self.content_type: str | None = None
        self.encoding: str | None = None
        self.authorization: bytes | None = None
        self.length = -1


def parse_head(head: bytes) -> Head | None:
    """The head (request line to the blank line, exclusive) of an agent's ingest request;
    None for anything else, which then goes to uvicorn: a header line that is not
    ``token: value``, a repeated or non-decimal Content-Length, no Content-Length, or a
    header in ``_HANDED``."""
    lines = head.split(b"\r\n")
    if lines[0] != INGEST_LINE[:-2]:
        return None
    out = Head()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            return None
        name = name.lower()
        value = value.strip(b" \t")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            return None
        if name in _HANDED:
            return None
        if name == b"content-length":
            if out.length >= 0 or not value.isdigit() or len(value) > 18:
                return None
            out.length = int(value)
        elif name == b"content-type":
            out.content_type = value.decode("latin-1")
        elif name == b"content-encoding":
            out.encoding = value.decode("latin-1")
        elif name == b"authorization":
            if out.authorization is not None:
                return None
            out.authorization = value
        elif name == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            out.close = b"close" in tokens
    return out if out.length >= 0 else None


class _Date:
    """The ``date`` header, made once a second (as uvicorn does)."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


class Acceptor:
    """One acceptor process's state: the channel to the server process and its answers."""

    def __init__(
        self,
        config: dict[str, Any],
        channel: socket.socket,
        handover: socket.socket,
    ) -> None:
        self.limits = IngestLimits(**config["limits"])
        self.prepare = bool(config["prepare"])
        self.header_timeout = float(config["header_timeout"])
        self.body_timeout = float(config["body_timeout"])
        self.keep_alive = float(config["keep_alive"])
        self.checker = Checker(self.limits)
        self.handover_sock = handover
        self.date = _Date()
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, Connection] = {}
        self._ids = 0
        self._channel: asyncio.Transport | None = None
        self.closed = self.loop.create_future()
        self._channel_sock = channel

    async def open(self) -> None:
        await self.loop.connect_accepted_socket(lambda: _Channel(self), self._channel_sock)

    # --- the channel ------------------------------------------------------------------------

    def send(
        self, conn: Connection, started: float, head: Head, size: int, result: tuple[Any, ...]
    ) -> None:
        self._ids += 1
        rid = self._ids
        self.pending[rid] = conn
        # at once, not at the end of the loop turn: the server process stores this request
        # while this one reads the next (frames held for the turn made the two take turns)
        if self._channel is not None and not self._channel.is_closing():
            self._channel.write(frame((rid, started, head.authorization, size, result)))

    def answered(self, message: tuple[Any, ...]) -> None:
        rid, status, body, headers = message
        conn = self.pending.pop(rid, None)
        if conn is not None:
            conn.respond(status, body, headers)

    # --- handing a connection over -----------------------------------------------------------

    def hand_over(self, transport: asyncio.Transport, data: bytes) -> None:
        """Give the connection and ``data`` (read from it, not yet answered) to the server
        process; this process forgets it."""
        sock = transport.get_extra_info("socket")
        try:
            fd = os.dup(sock.fileno())
        except OSError:
            transport.abort()
            return
        try:
            socket.send_fds(self.handover_sock, [b"H" + data], [fd])
        except OSError as exc:
            logger.error("ingest acceptor: cannot hand a connection over: %s", exc)
        finally:
            os.close(fd)
            transport.abort()


class _Channel(asyncio.Protocol):
    def __init__(self, acceptor: Acceptor) -> None:
        self.acceptor = acceptor
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.acceptor._channel = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        for message in take_frames(self._buf):
            self.acceptor.answered(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.acceptor.closed.done():
            self.acceptor.closed.set_result(None)


HEAD, BODY, WAITING = 0, 1, 2


class Connection(asyncio.Protocol):
    """One accepted connection: agents' ingest requests read and answered here, in order;
    the connection is handed over at the first request of any other kind."""

    def __init__(self, acceptor: Acceptor) -> None:
        self.acceptor = acceptor
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = HEAD
        self.head: Head | None = None
        self.started = 0.0
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.close_after = False
        self.idle = False
        """The timer running is the keep-alive one (no request begun since the last answer)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm(self.acceptor.header_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.state != WAITING:
            self._step()

    def eof_received(self) -> bool | None:
        return None  # close

    # --- timers --------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self.idle = False
        self.timer = self.acceptor.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        self.idle = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head_late(self) -> None:
        self.timer = None
        if self.transport is not None and self.state == HEAD:
            self.transport.write(_HEADER_TIMEOUT)
            self.transport.close()

    def _body_late(self) -> None:
        self.timer = None
        if self.transport is not None and self.state == BODY:
            assert self.head is not None
            reason = "the body did not arrive in time (body_timeout); nothing was stored"
            self.close_after = True
            self._submit(self.head, (0, REFUSED, 408, reason, None), 0)

    # --- reading ---------------------------------------------------------------------------------

    def _step(self) -> None:
        """Take the next request from the buffer as far as it is there."""
        transport = self.transport
        while transport is not None and not transport.is_closing():
            buf = self.buf
            if self.state == HEAD:
                if not buf:
                    return
                n = min(len(buf), len(INGEST_LINE))
                if buf[:n] != INGEST_LINE[:n]:
                    self._hand_over()
                    return
                if self.started == 0.0:  # a request begins
                    self.started = time.monotonic()
                    if self.idle:  # the keep-alive timer gives way to the header timer
                        self._arm(self.acceptor.header_timeout, self._head_late)
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        self._hand_over()
                    return
                head = parse_head(bytes(buf[:end]))
                if head is None:
                    self._hand_over()
                    return
                del buf[: end + 4]
                self.head = head
                self.close_after = head.close
                if head.length > self.acceptor.limits.max_body_bytes:
                    reason = (
                        f"body is {head.length} bytes, the limit is "
                        f"{self.acceptor.limits.max_body_bytes}"
                    )
                    self.close_after = True
                    self._submit(head, (0, REFUSED, 413, reason, None), 0)
                    return
                self.state = BODY
                self.deadline = self.started + self.acceptor.body_timeout
                self._disarm()
            if self.state == BODY:
                head = self.head
                assert head is not None
                if len(buf) < head.length:
                    if self.timer is None:
                        delay = max(0.0, self.deadline - time.monotonic())
                        self._arm(delay, self._body_late)
                    return
                self._disarm()
                body = bytes(buf[: head.length])
                del buf[: head.length]
                acc = self.acceptor
                message = (0, int(time.time() * 1000), head.content_type, head.encoding, body)
                result = answer(acc.checker, acc.prepare, message)
                self._submit(head, result, len(body))
                return
            return

    def _submit(self, head: Head, result: tuple[Any, ...], size: int) -> None:
        self.state = WAITING
        self._disarm()
        assert self.transport is not None
        self.transport.pause_reading()
        self.acceptor.send(self, self.started, head, size, result)

    def respond(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """The server process's answer to the request in flight."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        parts = [
            b"HTTP/1.1 %d %s\r\nserver: uvicorn\r\ndate: " % (status, _REASONS.get(status, b"")),
            self.acceptor.date(),
        ]
        for name, value in headers:
            parts += [b"\r\n", name, b": ", value]
        if self.close_after:
            parts.append(b"\r\nconnection: close")
        parts += [b"\r\ncontent-length: %d\r\n\r\n" % len(body), body]
        transport.write(b"".join(parts))
        if self.close_after:
            transport.close()
            return
        self.state = HEAD
        self.head = None
        self.started = 0.0
        transport.resume_reading()
        self._arm(self.acceptor.keep_alive, self._idle)
        self.idle = True
        if self.buf:
            self._step()

    def _idle(self) -> None:
        self.timer = None
        self.idle = False
        if self.transport is not None and self.state == HEAD and not self.buf:
            self.transport.close()

    def _hand_over(self) -> None:
        self._disarm()
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.pause_reading()
            self.acceptor.hand_over(transport, bytes(self.buf))
        self.buf.clear()


async def _run(listen_fd: int, channel_fd: int, handover_fd: int, config: dict[str, Any]) -> int:
    listener = socket.socket(fileno=listen_fd)
    listener.setblocking(False)
    channel = socket.socket(fileno=channel_fd)
    channel.setblocking(False)
    handover = socket.socket(fileno=handover_fd)
    handover.settimeout(5.0)
    acceptor = Acceptor(config, channel, handover)
    await acceptor.open()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(acceptor), sock=listener)
    await acceptor.closed  # the server process closed the channel (stopped or died)
    server.close()
    return 0


def main(argv: list[str]) -> int:
    # a terminal's Ctrl-C (SIGINT) and a service manager's stop (SIGTERM, to every process of
    # the unit) reach the whole group: the server process stops us once it has answered what
    # we sent it (it closes the channel), so we wait for that rather than drop those requests
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    listen_fd, channel_fd, handover_fd = (int(a) for a in argv[1:4])
    config = json.loads(argv[4])
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(_run(listen_fd, channel_fd, handover_fd, config))
    return uvloop.run(_run(listen_fd, channel_fd, handover_fd, config))
