"""The simulator's keep-alive connections: what the server gets, and what happens when it closes."""

from __future__ import annotations

import asyncio

import pytest

from hostpulse.sim.wire import Pool, WireError


async def _serve(answers: list[bytes], seen: list[bytes], close_after: int | None = None):
    """A server on 127.0.0.1 answering each request with the next of ``answers``; closes a
    connection after ``close_after`` requests on it."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while answers:
                head = await r.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                seen.append(head + await r.readexactly(length))
                w.write(answers.pop(0))
                await w.drain()
                served += 1
                if close_after is not None and served >= close_after:
                    break
        except asyncio.IncompleteReadError:
            pass
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_posts_the_request_and_reads_plain_and_chunked_answers() -> None:
    async def run() -> None:
        seen: list[bytes] = []
        answers = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ]
        server, port = await _serve(answers, seen)
        async with server:
            pool = Pool(f"http://127.0.0.1:{port}", size=1)
            a = await pool.post("/api/v1/ingest", b"BODY", {"authorization": "Bearer k"})
            b = await pool.post("/api/v1/ingest", b"MORE", {})
            await pool.aclose()
        assert (a.status, a.body) == (200, b"{}")
        assert (b.status, b.headers["retry-after"], b.text) == (429, "3", "abcde")
        assert seen[0].startswith(b"POST /api/v1/ingest HTTP/1.1\r\n")
        assert b"Host: 127.0.0.1:" in seen[0] and b"authorization: Bearer k\r\n" in seen[0]
        assert seen[0].endswith(b"\r\n\r\nBODY") and seen[1].endswith(b"MORE")

    asyncio.run(run())


def test_a_connection_closed_while_idle_is_reopened() -> None:
    async def run() -> None:
        seen: list[bytes] = []
        answers = [b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"] * 3
        server, port = await _serve(list(answers), seen, close_after=1)
        async with server:
            pool = Pool(f"http://127.0.0.1:{port}", size=1)
            statuses = [(await pool.post("/x", b"%d" % i, {})).status for i in range(3)]
            await pool.aclose()
        assert statuses == [204, 204, 204]
        assert [s[-1:] for s in seen] == [b"0", b"1", b"2"]  # each sent once

    asyncio.run(run())


def test_an_answer_that_is_not_http_is_an_error() -> None:
    async def run() -> None:
        server, port = await _serve([b"SSH-2.0-OpenSSH\r\n\r\n"], [])
        async with server:
            pool = Pool(f"http://127.0.0.1:{port}", size=1)
            with pytest.raises(WireError):
                await pool.post("/x", b"", {})
            await pool.aclose()

    asyncio.run(run())
    with pytest.raises(ValueError):
        Pool("ftp://example")
