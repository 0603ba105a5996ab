"""A small pool of keep-alive HTTP/1.1 connections for the simulator's live pushes.

At 10,000 simulated hosts the simulator sends 2,000 requests a second. Through
``httpx.AsyncClient`` a POST cost 2.2 ms of the simulator's CPU (h11, httpcore and anyio for
each request; measured against a trivial server on the loaded 2-core machine), so the
simulator alone wanted more than a core and fell behind what 10,000 agents send; a request
written by hand on an asyncio stream cost 0.07 ms in the same run. The server receives the
same requests either way: method, path, headers and body."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024


class WireError(Exception):
    """The connection failed or the answer was not HTTP/1.1 we understand."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Conn:
    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Up to ``size`` connections to ``base_url`` (http or https), one request at a time on
    each; a connection the server closed while idle is reopened and the request sent again."""

    def __init__(self, base_url: str, size: int = 16, timeout: float = 30.0) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.tls = url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self.authority = url.netloc
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        self._idle: asyncio.Queue[_Conn] = asyncio.Queue()
        self._all = [_Conn() for _ in range(size)]
        for c in self._all:
            self._idle.put_nowait(c)
        self._ssl = ssl.create_default_context() if self.tls else None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        head = [f"POST {self.prefix}{path} HTTP/1.1", f"Host: {self.authority}"]
        head += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        conn = await self._idle.get()
        try:
            return await asyncio.wait_for(self._exchange(conn, raw), self.timeout)
        except (
            TimeoutError,
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            conn.close()
            raise WireError(repr(exc)) from exc
        except WireError:
            conn.close()
            raise
        finally:
            self._idle.put_nowait(conn)

    async def _exchange(self, conn: _Conn, raw: bytes) -> Answer:
        reused = conn.writer is not None
        try:
            return await self._send(conn, raw)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if not reused or partial:
                raise
        # a kept-alive connection the server closed while idle: nothing of the request was
        # read, so it goes again on a new connection
        conn.close()
        return await self._send(conn, raw)

    async def _send(self, conn: _Conn, raw: bytes) -> Answer:
        if conn.writer is None:
            conn.reader, conn.writer = await asyncio.open_connection(
                self.host, self.port, ssl=self._ssl, limit=MAX_HEAD
            )
        assert conn.reader is not None and conn.writer is not None
        conn.writer.write(raw)
        await conn.writer.drain()
        head = await conn.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise WireError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._chunked(conn.reader)
        else:
            length = int(headers.get("content-length", "0") or 0)
            if not 0 <= length <= MAX_BODY:
                raise WireError(f"answer of {length} bytes")
            body = await conn.reader.readexactly(length)
        if headers.get("connection", "").lower() == "close":
            conn.close()
        return Answer(int(parts[1]), headers, body)

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if len(out) + size > MAX_BODY:
                raise WireError("answer too long")
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return bytes(out)
            out += chunk[:-2]

    async def aclose(self) -> None:
        for c in self._all:
            c.close()
