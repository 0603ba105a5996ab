"""The remote-write client (``tsdb.http1``) against a small HTTP/1.1 server on loopback: what
the server receives, answers of every framing, kept-alive connections reused, a connection
the server closed while idle replaced without losing or repeating the write, a server that
never answers, and environment proxies left to httpx."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

import pytest

from hostpulse.store.tsdb.http1 import HTTPError, PostClient, needs_httpx

Handler = Callable[[bytes, dict[str, str], bytes], Awaitable[bytes | None]]
"""(request line, headers, body) -> the raw answer, or None to close without one."""


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, dict[str, str], bytes]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        for w in self.writers:
            w.close()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            for _ in range(100):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((lines[0].encode(), headers, body))
                answer = await self.handler(lines[0].encode(), headers, body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if answer.startswith(b"HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def ok(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
    return b"HTTP/1.1 204 No Content\r\n\r\n"


def test_posts_reach_the_server_with_their_headers_on_one_kept_alive_connection() -> None:
    async def main() -> None:
        async with Server(ok) as srv:
            client = PostClient(f"http://writer:s%40cret@127.0.0.1:{srv.port}/api/v1/write", 5)
            try:
                for i in range(3):
                    answer = await client.post(b"body-%d" % i, {"Content-Encoding": "snappy"})
                    assert answer.status == 204
            finally:
                await client.aclose()
            assert srv.connections == 1
            assert [b for _, _, b in srv.requests] == [b"body-0", b"body-1", b"body-2"]
            line, headers, _ = srv.requests[0]
            assert line == b"POST /api/v1/write HTTP/1.1"
            assert headers["host"] == f"127.0.0.1:{srv.port}"
            assert headers["content-encoding"] == "snappy"
            assert (
                headers["authorization"] == "Basic " + base64.b64encode(b"writer:s@cret").decode()
            )

    asyncio.run(main())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n\r\nout of order samples",
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\nout of\r\nE\r\n order samples\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_an_answer_body_is_read_whole_and_the_connection_used_again(answer: bytes) -> None:
    async def refuse(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
        return answer

    async def main() -> None:
        async with Server(refuse) as srv:
            client = PostClient(f"http://127.0.0.1:{srv.port}/api/v1/write", 5)
            try:
                for _ in range(2):
                    got = await client.post(b"x", {})
                    assert (got.status, got.text) == (400, "out of order samples")
            finally:
                await client.aclose()
            assert srv.connections == 1

    asyncio.run(main())


def test_an_answer_that_ends_with_the_connection_is_read_and_not_kept() -> None:
    async def closing(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
        return b"HTTP/1.0 200 OK\r\n\r\nfine"  # no length: the body ends when it closes

    async def main() -> None:
        async with Server(closing) as srv:
            client = PostClient(f"http://127.0.0.1:{srv.port}/w", 5)
            try:
                for _ in range(2):
                    got = await client.post(b"a", {})
                    assert (got.status, got.text) == (200, "fine")
            finally:
                await client.aclose()
            assert srv.connections == 2
            assert [b for _, _, b in srv.requests] == [b"a", b"a"]

    asyncio.run(main())


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_write_sent_once() -> None:
    async def main() -> None:
        async with Server(ok) as srv:
            client = PostClient(f"http://127.0.0.1:{srv.port}/w", 5)
            try:
                assert (await client.post(b"first", {})).status == 204
                for w in srv.writers:  # the server's keep-alive timeout
                    w.close()
                await asyncio.sleep(0.05)
                assert (await client.post(b"second", {})).status == 204
            finally:
                await client.aclose()
            assert srv.connections == 2
            assert [b for _, _, b in srv.requests] == [b"first", b"second"]

    asyncio.run(main())


def test_no_answer_is_an_error_not_a_hang() -> None:
    async def silent(line: bytes, headers: dict[str, str], body: bytes) -> bytes:
        await asyncio.sleep(30)
        return b""

    async def dropped(line: bytes, headers: dict[str, str], body: bytes) -> None:
        return None  # read the request, close without an answer

    async def main() -> None:
        async with Server(silent) as srv:
            client = PostClient(f"http://127.0.0.1:{srv.port}/w", 0.3)
            with pytest.raises(HTTPError, match="no answer within"):
                await client.post(b"x", {})
            await client.aclose()
        async with Server(dropped) as srv:
            client = PostClient(f"http://127.0.0.1:{srv.port}/w", 5)
            with pytest.raises(HTTPError):
                await client.post(b"x", {})
            await client.aclose()
        with pytest.raises(ValueError):
            PostClient("ftp://127.0.0.1/w", 5)

    asyncio.run(main())


def test_an_environment_proxy_leaves_the_url_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert not needs_httpx("http://vm:8428/api/v1/write")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert needs_httpx("http://vm:8428/api/v1/write")
    assert not needs_httpx("https://vm:8428/api/v1/write")
    monkeypatch.setenv("NO_PROXY", "vm")
    assert not needs_httpx("http://vm:8428/api/v1/write")
