"""The agent's HTTP/1.1 client (agent/http11.py) against a raw socket server on 127.0.0.1 that
answers with scripted bytes: every body framing, interim answers, bounds, closed connections,
and a real request line and headers as the server receives them."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from hostpulse.agent.http11 import Answer, Connection, ProtocolError, RemoteClosed


class RawServer:
    """Accepts connections; for each request read, sends the next scripted answer (bytes), or
    closes the connection when the script says None."""

    def __init__(self, script: list[bytes | None]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.script:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                while self.script:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + rest)
                    answer = self.script.pop(0)
                    if answer is None:
                        break  # close without answering
                    conn.sendall(answer)
                    framed = b"Content-Length" in answer or b"chunked" in answer
                    if b"Connection: close" in answer or not framed:
                        break

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)

    def connection(self) -> Connection:
        def connect(timeout: float) -> socket.socket:
            return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

        return Connection(connect, f"127.0.0.1:{self.port}")


@pytest.fixture
def server() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    yield made
    for s in made:
        s.close()


def start(made: list[RawServer], script: list[bytes | None]) -> RawServer:
    s = RawServer(script)
    made.append(s)
    return s


def post(conn: Connection, body: bytes = b"x", max_body: int = 1000) -> Answer:
    return conn.request("POST", "/api/v1/ingest", {"X-A": "1"}, body, 5.0, max_body)


def test_request_line_headers_and_keep_alive(server: list[RawServer]) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: A\r\n\r\nok"
    s = start(server, [ok, ok])
    conn = s.connection()
    big = b"b" * 100_000  # sent in a second write
    a1 = conn.request("POST", "/api/v1/ingest", {"X-A": "1"}, big, 5.0, 1000)
    a2 = conn.request("POST", "/api/v1/ingest", {}, b"small", 5.0, 1000)
    conn.close()
    assert (a1.status, a1.body, a1.headers["x-thing"], a1.will_close) == (200, b"ok", "A", False)
    assert a2.body == b"ok" and s.accepted == 1  # one connection for both
    first = s.requests[0]
    assert first.startswith(b"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-A: 1\r\n" in first and b"\r\nContent-Length: 100000\r\n" in first
    assert first.endswith(big)


def test_chunked_interim_and_close_delimited_bodies(server: list[RawServer]) -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
    )
    until_close = b"HTTP/1.0 503 Busy\r\nRetry-After: 3\r\n\r\nlater"
    s = start(server, [chunked, until_close])
    conn = s.connection()
    a = post(conn)
    assert (a.status, a.body, a.will_close) == (201, b"abcdefg", False)
    b = post(conn)
    assert (b.status, b.body, b.will_close) == (503, b"later", True)
    assert b.headers["retry-after"] == "3"
    assert not conn.is_open


def test_bodies_are_bounded(server: list[RawServer]) -> None:
    long = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"z" * 5000
    chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"800\r\n" + b"y" * 2048
    s = start(server, [long, chunks + b"\r\n0\r\n\r\n"])
    conn = s.connection()
    a = post(conn, max_body=100)
    assert len(a.body) == 100 and a.will_close and not conn.is_open
    b = post(conn, max_body=100)
    assert len(b.body) == 100 and b.will_close


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_answers_are_protocol_errors(server: list[RawServer], answer: bytes) -> None:
    s = start(server, [answer])
    conn = s.connection()
    with pytest.raises(ProtocolError):
        post(conn)
    assert not conn.is_open


def test_a_closed_idle_connection_is_remote_closed(server: list[RawServer]) -> None:
    s = start(server, [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None])
    conn = s.connection()
    post(conn)
    with pytest.raises((RemoteClosed, ConnectionResetError, BrokenPipeError)):
        post(conn)
    assert not conn.is_open


def test_importing_the_client_loads_neither_ssl_nor_email() -> None:
    import subprocess

    code = (
        "import sys, hostpulse.agent.delivery.transport, hostpulse.agent.delivery.shipper; "
        "print(sorted(m for m in ('ssl', 'email', 'http.client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
