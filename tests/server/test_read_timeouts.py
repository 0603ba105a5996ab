"""Issue 13 item 12: slow-header and slow-body connections were never timed out (a request
held for 92 s); uvicorn's timeout_keep_alive covers only the time between requests. Now the
headers must arrive within header_timeout (408, connection closed) and a body within
body_timeout (408, nothing stored)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.server.testing import LiveServer

BOUND_S = 15.0  # generous: the timeouts are 1 s; before the fix the server waited forever


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("timeouts") / "data"
    with LiveServer(data, header_timeout=1, body_timeout=1) as server:
        yield server


def _connect(srv: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])), timeout=BOUND_S)
    sock.settimeout(BOUND_S)
    return sock


def _answer(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out, time.monotonic() - started
        out += chunk


def test_headers_sent_slowly_get_408_and_the_connection_closed(srv: LiveServer) -> None:
    with _connect(srv) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        answer, took = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < BOUND_S


def test_a_connection_that_sends_nothing_is_closed(srv: LiveServer) -> None:
    with _connect(srv) as sock:
        _, took = _answer(sock)
    assert took < BOUND_S


def test_an_ingest_body_sent_slowly_gets_408(srv: LiveServer) -> None:
    key = srv.agent_key("slow")
    head = (
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: 100\r\n\r\n"
    )
    with _connect(srv) as sock:
        sock.sendall(head.encode() + b"\x0a\x05")  # 2 of 100 bytes, then silence
        answer, took = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body_timeout" in answer
    assert took < BOUND_S


def test_any_other_body_sent_slowly_gets_408(srv: LiveServer) -> None:
    head = (
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    with _connect(srv) as sock:
        sock.sendall(head.encode() + b'{"username":')
        answer, took = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < BOUND_S


def test_a_request_in_time_is_answered_as_usual(srv: LiveServer) -> None:
    with _connect(srv) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer, _ = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer
