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
from wire import raw_connection, read_to_close

from hostpulse.server.testing import LiveServer

BOUND_S = 15.0  # generous: the timeouts are 1 s; before the fix the server waited forever


@pytest.fixture(scope="module", params=[0, 1], ids=["in-process", "acceptor"])
def srv(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """The server reading every request itself, and with an ingest acceptor process (which
    reads agents' ingest requests and hands every other connection to the server)."""
    data: Path = tmp_path_factory.mktemp("timeouts") / "data"
    with LiveServer(
        data, header_timeout=1, body_timeout=1, ingest_acceptors=request.param
    ) as server:
        yield server


def _connect(srv: LiveServer) -> socket.socket:
    return raw_connection(srv.url, BOUND_S)


def test_headers_sent_slowly_get_408_and_the_connection_closed(srv: LiveServer) -> None:
    with _connect(srv) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        answer, took = read_to_close(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < BOUND_S


def test_the_next_request_on_a_connection_sending_its_headers_slowly_gets_408(
    srv: LiveServer,
) -> None:
    """The first request's headers come whole (no timer is armed for them); the second
    request's start in a chunk of their own and never end: that request is timed."""
    with _connect(srv) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        answer, took = read_to_close(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < BOUND_S


def test_a_connection_that_sends_nothing_is_closed(srv: LiveServer) -> None:
    with _connect(srv) as sock:
        _, took = read_to_close(sock)
    assert took < BOUND_S


def test_an_ingest_body_sent_slowly_gets_408(srv: LiveServer) -> None:
    key = srv.agent_key("slow")
    head = (
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: 100\r\n\r\n"
    )
    with _connect(srv) as sock:
        sock.sendall(head.encode() + b"\x0a\x05")  # 2 of 100 bytes, then silence
        answer, took = read_to_close(sock)
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
        answer, took = read_to_close(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < BOUND_S


def test_a_request_in_time_is_answered_as_usual(srv: LiveServer) -> None:
    with _connect(srv) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer, _ = read_to_close(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer


def test_read_within_takes_a_message_that_is_there_and_times_out_one_that_is_not() -> None:
    """``read_within`` answers a message that is ready at once (no timer), waits for one that
    comes before the deadline, raises BodyTimeout for one that does not, and passes a
    cancellation of the reading task through to ``receive``."""
    import asyncio

    from hostpulse.server.timeouts import BodyTimeout, read_within

    ready = {"type": "http.request", "body": b"x", "more_body": False}

    async def now() -> dict[str, object]:
        return ready

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert await read_within(now, time.monotonic() - 1) is ready  # there: taken
        later: asyncio.Future[dict[str, object]] = loop.create_future()
        loop.call_soon(later.set_result, ready)

        async def waits() -> dict[str, object]:
            return await later

        assert await read_within(waits, time.monotonic() + BOUND_S) is ready
        closed: list[str] = []

        async def never() -> dict[str, object]:
            try:
                await loop.create_future()
            except asyncio.CancelledError:
                closed.append("cancelled")
                raise
            raise AssertionError("unreachable")

        with pytest.raises(BodyTimeout):
            await read_within(never, time.monotonic() + 0.01)
        assert closed == ["cancelled"]
        task = asyncio.create_task(read_within(never, time.monotonic() + BOUND_S))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert closed == ["cancelled", "cancelled"]

    asyncio.run(main())
