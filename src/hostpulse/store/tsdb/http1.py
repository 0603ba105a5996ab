"""A small HTTP/1.1 client for the remote-write POSTs only: keep-alive connections on asyncio
streams, one request at a time per connection.

Why not httpx here: a remote write is one POST of a ready body whose answer is a status and a
short text, and httpx (through httpcore and anyio) cost about 1 ms of CPU per POST, 20 times
what writing the request and reading the answer on a stream costs; with several replicas a
replica groups fewer agent requests into one write, so that fixed cost was a large part of the
CPU per sample (docs/scale-out.md). Queries still use httpx. A URL that an environment proxy
setting (``HTTPS_PROXY`` ...) covers is written with httpx too (``needs_httpx``), so proxies
work as before; credentials in the URL become a basic ``Authorization`` header, as with httpx.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_HEAD = 64 * 1024
"""Bytes of an answer's status line and headers at most."""
MAX_BODY = 1024 * 1024
"""Bytes of an answer's body kept at most (the TSDB's error text; the rest is read and dropped)."""
_READ = 64 * 1024


class HTTPError(OSError):
    """The exchange failed (connection, timeout, a malformed answer)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def needs_httpx(url: str) -> bool:
    """Whether an environment proxy setting applies to ``url`` (then httpx writes)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class PostClient:
    """POSTs to one URL (``http://`` or ``https://``) over at most ``max_idle`` kept-alive
    connections (more are opened while more requests run at once, and closed after)."""

    def __init__(self, url: str, timeout_s: float, *, max_idle: int = 8) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self.timeout_s = timeout_s
        self.max_idle = max_idle
        path = parts.path or "/"
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        default = parts.port is None or parts.port == (443 if self.ssl else 80)
        head = [f"POST {path} HTTP/1.1", f"Host: {host if default else f'{host}:{parts.port}'}"]
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            head.append(f"Authorization: Basic {base64.b64encode(user.encode()).decode()}")
        self._head = "\r\n".join(head)
        self._idle: list[_Conn] = []
        self._closed = False

    async def post(self, body: bytes, headers: dict[str, str]) -> Answer:
        """Send ``body``; the answer. HTTPError when there is none (nothing is retried but a
        kept-alive connection the server had closed before it read anything)."""
        extra = "".join(f"\r\n{k}: {v}" for k, v in headers.items())
        request = f"{self._head}{extra}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        try:
            async with asyncio.timeout(self.timeout_s):
                while self._idle:
                    conn = self._idle.pop()
                    try:
                        return await self._exchange(conn, request)
                    except _Stale:
                        conn.close()
                return await self._exchange(await self._connect(), request)
        except TimeoutError:
            raise HTTPError(f"no answer within {self.timeout_s:g} s") from None
        except _Stale as exc:
            raise HTTPError(str(exc.__cause__ or "connection closed")) from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise HTTPError(f"{type(exc).__name__}: {exc}") from None

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, limit=MAX_HEAD
        )
        return _Conn(reader, writer)

    async def _exchange(self, conn: _Conn, request: bytes) -> Answer:
        keep = False
        try:
            try:
                conn.writer.write(request)
                await conn.writer.drain()
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
                raise _Stale() from exc  # closed before it answered anything
            status, length, chunked, keep = _parse_head(head)
            if chunked:
                body = await _read_chunked(conn.reader)
            elif length is not None:
                body = await _read_length(conn.reader, length)
            else:  # the body ends with the connection
                body = await _read_to_end(conn.reader)
                keep = False
            return Answer(status, body)
        finally:
            if keep and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Stale(Exception):
    pass


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, Content-Length, chunked, keep-alive) of an answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    status = int(rest[:3])
    length: int | None = None
    chunked = False
    keep = version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
            if length < 0:
                raise ValueError("negative Content-Length")
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep = "close" not in value and (keep or "keep-alive" in value)
    if status in (204, 304) or 100 <= status < 200:
        length, chunked = 0, False
    return status, length, chunked, keep


async def _read_length(reader: asyncio.StreamReader, length: int) -> bytes:
    kept = await reader.readexactly(min(length, MAX_BODY))
    left = length - len(kept)
    while left > 0:  # read (and drop) the rest, so the connection can be used again
        left -= len(await reader.readexactly(min(left, _READ)))
    return kept


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(out)
        chunk = await _read_length(reader, size)
        if len(out) < MAX_BODY:
            out += chunk[: MAX_BODY - len(out)]
        await reader.readexactly(2)


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while chunk := await reader.read(_READ):
        if len(out) < MAX_BODY:
            out += chunk[: MAX_BODY - len(out)]
    return bytes(out)
