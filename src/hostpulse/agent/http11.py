"""The little of HTTP/1.1 the agent speaks: one request at a time on a persistent connection,
over any connected socket (TCP, TLS or the container engine's Unix socket).

Why not ``http.client``: importing it imports ``email`` (its header parser) and ``ssl``, 7 MB of
the agent's resident memory, a quarter of it, measured with ``/proc/self/status`` VmRSS
before and after the import (Python 3.11). The agent sends small requests to a server it knows
and reads short answers, so it needs a status line, headers, and a body framed by
``Content-Length``, ``chunked`` or the end of the connection; ``ssl`` is imported only for an
``https://`` server.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_LINE = 65_536
MAX_HEADERS = 100


class ProtocolError(OSError):
    """The answer is not HTTP/1.x as this client reads it."""


class RemoteClosed(ConnectionError):
    """The other side closed the connection before the first byte of an answer (as a server
    does to a keep-alive connection it found idle)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    will_close: bool
    """The connection cannot carry another request (the server said so, or the body was not
    read to its end)."""


class Connection:
    """One connection, opened on first use by ``connect(timeout)`` and reopened after
    ``close``. Not thread-safe: one request at a time."""

    def __init__(self, connect: Callable[[float], socket.socket], host_header: str) -> None:
        self._connect = connect
        self._host = host_header
        self._sock: socket.socket | None = None
        self._file: io.BufferedReader | None = None

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
        max_body: int,
    ) -> Answer:
        """Send one request and read its answer (at most ``max_body`` bytes of body). OSError
        (RemoteClosed, ProtocolError, TimeoutError, ConnectionError...) on any failure; the
        connection is then closed."""
        try:
            if self._sock is None:
                self._sock = self._connect(timeout)
                self._file = self._sock.makefile("rb")
            sock, f = self._sock, self._file
            assert f is not None
            sock.settimeout(timeout)
            head = [f"{method} {target} HTTP/1.1", f"Host: {self._host}"]
            head += [f"{k}: {v}" for k, v in headers.items()]
            if body or method in ("POST", "PUT"):
                head.append(f"Content-Length: {len(body)}")
            data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            sock.sendall(data + body if len(body) < 65_536 else data)
            if len(body) >= 65_536:
                sock.sendall(body)
            answer = _read_answer(f, method, max_body)
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        return answer

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _line(f: io.BufferedReader) -> bytes:
    line = f.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError("a line of the answer is longer than 64 KiB")
    return line


def _read_answer(f: io.BufferedReader, method: str, max_body: int) -> Answer:
    while True:
        line = _line(f)
        if not line:
            raise RemoteClosed("the server closed the connection without answering")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
        version, status = parts[0], int(parts[1])
        headers = _read_headers(f)
        if not 100 <= status < 200:
            break  # 1xx are interim answers: the real one follows
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    if method == "HEAD" or status in (204, 304):
        return Answer(status, headers, b"", will_close)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete = _read_chunked(f, max_body)
        return Answer(status, headers, body, will_close or not complete)
    length_text = headers.get("content-length")
    if length_text is None:  # the body ends with the connection
        body = f.read(max_body)
        return Answer(status, headers, body, True)
    if not length_text.strip().isdigit():
        raise ProtocolError(f"bad Content-Length {length_text[:40]!r}")
    length = int(length_text)
    body = _exactly(f, min(length, max_body))
    return Answer(status, headers, body, will_close or length > max_body)


def _read_headers(f: io.BufferedReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = _line(f)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ProtocolError("the connection closed in the middle of the headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"not a header line: {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    raise ProtocolError(f"more than {MAX_HEADERS} header lines")


def _exactly(f: io.BufferedReader, n: int) -> bytes:
    data = f.read(n) if n else b""
    if len(data) < n:
        raise ProtocolError(f"the connection closed after {len(data)} of {n} body bytes")
    return data


def _read_chunked(f: io.BufferedReader, max_body: int) -> tuple[bytes, bool]:
    """The body and whether it was read to its end (False: longer than ``max_body``)."""
    out = bytearray()
    while True:
        size_text = _line(f).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:40]!r}") from None
        if size == 0:
            while _line(f) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(out), True
        if len(out) + size > max_body:
            out += _exactly(f, max_body - len(out))
            return bytes(out), False
        out += _exactly(f, size)
        _line(f)  # the CRLF after the chunk
