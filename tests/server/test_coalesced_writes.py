"""A response's head and body leave in one write (``server/coalesce.py``): uvicorn wrote them
separately, two syscalls and two segments per answer. Only a head that announces a body is
held; everything else (WebSocket handshakes, bodiless answers, HEAD) must still arrive."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.server.coalesce import JOIN_LIMIT, CoalescingTransport
from hostpulse.server.testing import LiveServer


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 4242) if name in ("peername", "sockname") else None


def _head(length: int | None, status: bytes = b"200 OK") -> bytes:
    lines = [b"HTTP/1.1 " + status, b"content-type: application/json"]
    if length is not None:
        lines.append(b"content-length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _pair() -> tuple[CoalescingTransport, _Recorder]:
    raw = _Recorder()
    return CoalescingTransport(raw), raw  # type: ignore[arg-type]


def test_head_and_body_go_out_in_one_write() -> None:
    t, raw = _pair()
    t.write(_head(2))
    assert raw.writes == []
    assert t.get_write_buffer_size() == len(_head(2))
    t.write(b"{}")
    assert raw.writes == [_head(2) + b"{}"]
    t.write(_head(3))  # the next answer on the connection
    t.write(b"[1]")
    assert raw.writes[1:] == [_head(3) + b"[1]"]


@pytest.mark.parametrize(
    "head",
    [
        _head(None, b"101 Switching Protocols"),
        _head(0),
        _head(None),  # chunked: its length is unknown
        _head(None, b"204 No Content"),
    ],
)
def test_a_head_without_a_body_to_wait_for_is_written_at_once(head: bytes) -> None:
    t, raw = _pair()
    t.write(head)
    assert raw.writes == [head]


def test_a_held_head_is_written_by_flush_and_close() -> None:
    t, raw = _pair()
    t.write(_head(5))
    t.flush()  # a HEAD answer: the response completed without a body write
    assert raw.writes == [_head(5)]
    t.write(_head(5))
    t.close()
    assert raw.writes == [_head(5), _head(5)]
    assert raw.closed


def test_a_large_body_is_not_copied_into_its_head() -> None:
    t, raw = _pair()
    body = b"x" * (JOIN_LIMIT + 1)
    t.write(_head(len(body)))
    t.write(body)
    assert raw.writes == [_head(len(body)), body]


def test_other_attributes_are_the_transports() -> None:
    t, _ = _pair()
    assert t.get_extra_info("peername") == ("127.0.0.1", 4242)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("coalesce") / "data"
    with LiveServer(data) as server:
        yield server


def _exchange(srv: LiveServer, request: bytes, want: int) -> bytes:
    """Send ``request`` on one keep-alive connection and read until ``want`` answers came."""
    port = int(srv.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        sock.sendall(request)
        out = b""
        for _ in range(1000):  # bounded: each pass reads what has arrived
            if out.count(b"HTTP/1.1 ") >= want and out.endswith(b"}"):
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_a_real_server_answers_get_head_and_pipelined_requests(srv: LiveServer) -> None:
    get = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"  # the dashboard's page: a body it leaves out
    out = _exchange(srv, get + head + get, want=3)
    answers = out.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200", b"200", b"200"], out
    heads = [a.split(b"\r\n\r\n", 1) for a in answers]
    length = int(
        next(h for h in heads[0][0].split(b"\r\n") if h.startswith(b"content-length")).split(b":")[
            1
        ]
    )
    assert len(heads[0][1]) == length > 0  # the GET's body, whole
    assert heads[1][1] == b""  # HEAD: the head only, and it did arrive
    assert len(heads[2][1]) == length


def test_the_servers_protocol_writes_through_the_coalescing_transport() -> None:
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from hostpulse.server.timeouts import timed_http_protocol

    async def app(scope: object, receive: object, send: object) -> None:  # never called
        raise AssertionError

    config = uvicorn.Config(app, log_level="warning")
    config.load()
    loop = asyncio.new_event_loop()
    proto = timed_http_protocol(10.0)(config, ServerState(), {}, loop)
    raw = _Recorder()
    raw.pause_reading = raw.resume_reading = lambda: None  # type: ignore[attr-defined]
    proto.connection_made(raw)  # type: ignore[arg-type]
    try:
        assert isinstance(proto.transport, CoalescingTransport)
        proto.transport.write(_head(2))
        proto.transport.write(b"{}")
        assert raw.writes == [_head(2) + b"{}"]
    finally:
        proto.connection_lost(None)
        loop.close()
