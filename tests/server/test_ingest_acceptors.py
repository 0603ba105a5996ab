"""Ingest acceptor processes (``ingest_acceptors``): they accept every connection; an agent's
ingest request read and checked there gets exactly the answer the server process gives (the
status, the JSON, the headers that matter), the key checked first as in the server process;
every other request's connection is handed to the server process and served there, also when
it comes after ingest requests on the same connection; the read timeouts and the body bound
hold; an acceptor that dies is replaced and stopping the server leaves none behind."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol
from wire import CPU, batch, mixed_bodies, raw_connection, read_to_close, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE
from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.config import ServerSettings
from hostpulse.server.ingest.acceptor import parse_head
from hostpulse.server.run import AcceptingServer
from hostpulse.server.testing import Clock, LiveServer

BOUND_S = 15.0


def _acceptor_pids(srv: LiveServer) -> list[int]:
    server = srv._server
    assert isinstance(server, AcceptingServer) and server.acceptors is not None
    return server.acceptors.pids


def _wait_pids(srv: LiveServer, other_than: int | None = None) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = _acceptor_pids(srv)
        if pids and other_than not in pids:
            return pids
        time.sleep(0.02)
    raise AssertionError("no ingest acceptor running")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    clock = Clock()
    with (
        LiveServer(tmp_path / "a", clock, ingest_acceptors=1, max_series_per_host=3) as acc,
        LiveServer(tmp_path / "b", clock, ingest_acceptors=0, max_series_per_host=3) as inline,
    ):
        yield acc, inline


def _post(
    srv: LiveServer,
    host: str,
    body: bytes,
    encoding: str | None = None,
    ct: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = {"content-type": ct or PROTOBUF_CONTENT_TYPE}
    headers["authorization"] = key if key is not None else srv.agent_headers(host)["authorization"]
    if encoding:
        headers["content-encoding"] = encoding
    return httpx.post(f"{srv.url}/api/v1/ingest", content=body, headers=headers, timeout=60)


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.json()) == (b.status_code, b.json())
    for name in ("retry-after", "www-authenticate", "content-type", "x-content-type-options"):
        assert a.headers.get(name) == b.headers.get(name), name


def test_an_acceptor_answers_as_the_server_process(
    servers: tuple[LiveServer, LiveServer],
) -> None:
    acc, inline = servers
    _wait_pids(acc)
    statuses = []
    for host, body, encoding, ct in mixed_bodies(int(acc.clock() * 1000) - 60_000):
        a = _post(acc, host, body, encoding, ct)
        _same(a, _post(inline, host, body, encoding, ct))
        statuses.append(a.status_code)
    assert statuses == [200, 200, 200, 422, 422, 422, 422, 422, 400, 400, 415, 415, 403]
    # the key is judged first, as in the server process: a bad body with a bad key is a 401
    for key in ("", "Bearer hpk_nosuchkey", "Bearer not-a-key"):
        _same(_post(acc, "w-1", b"\x0a\xff", key=key), _post(inline, "w-1", b"\x0a\xff", key=key))
        assert _post(acc, "w-1", b"\x0a\xff", key=key).status_code == 401
    # what was stored reads back through the API (a connection handed over)
    hosts = httpx.get(f"{acc.url}/api/v1/hosts", headers=acc.headers(), timeout=30)
    assert hosts.status_code == 200
    assert {h["host_id"] for h in hosts.json()} >= {"w-1"}
    server = acc._server
    assert isinstance(server, AcceptingServer) and server.acceptors is not None
    assert server.acceptors.restarts == 0


def test_a_connection_is_handed_over_after_ingest_requests_on_it(tmp_path: Path) -> None:
    """Pipelined: two ingest requests and a GET in one write; then a WebSocket."""
    with LiveServer(tmp_path / "p", ingest_acceptors=1) as srv:
        _wait_pids(srv)
        t = int(srv.clock() * 1000) - 60_000
        key = srv.agent_headers("p-1")["authorization"].encode()
        port = int(srv.url.rsplit(":", 1)[1])

        def ingest(ts: int) -> bytes:
            body = gzip.compress(request(batch("p-1", [(ts, {CPU: 1.0})])).SerializeToString())
            return (
                b"POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\nauthorization: " + key + b"\r\n"
                b"content-type: application/x-protobuf\r\ncontent-encoding: gzip\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body
            )

        get = b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND_S) as sock:
            sock.sendall(ingest(t) + ingest(t + 5000) + get)
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
        answers = out.split(b"HTTP/1.1 ")[1:]
        assert [a[:3] for a in answers] == [b"200", b"200", b"200"], out
        assert b'{"accepted_samples":1,"duplicate_samples":0}' in answers[0]
        assert b'{"accepted_samples":1,"duplicate_samples":0}' in answers[1]
        assert b'"status"' in answers[2]

        async def live() -> float:
            """A dashboard's WebSocket (handed over) sees a sample an acceptor took."""
            protocols = [Subprotocol("hostpulse"), Subprotocol("bearer." + srv.token("viewer"))]
            url = srv.url.replace("http://", "ws://") + "/api/v1/ws?hosts=p-1"
            async with connect(url, proxy=None, compression=None, subprotocols=protocols) as ws:
                await asyncio.to_thread(_post, srv, "p-1", _cpu("p-1", t + 10_000, 42.5))
                async with asyncio.timeout(BOUND_S):
                    while True:
                        frame = LiveFrame.FromString(await ws.recv(decode=False))
                        if frame.HasField("samples"):
                            return frame.samples.snapshots[0].values[0]

        assert asyncio.run(live()) == 42.5


def _cpu(host: str, ts: int, value: float) -> bytes:
    return request(batch(host, [(ts, {CPU: value})])).SerializeToString()


def test_a_body_declared_over_the_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """(The read timeouts with an acceptor: tests/server/test_read_timeouts.py.)"""
    with LiveServer(tmp_path / "t", ingest_acceptors=1, max_body_bytes=1000) as srv:
        _wait_pids(srv)
        key = srv.agent_headers("t-1")["authorization"].encode()
        head = b"POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\nauthorization: " + key
        with raw_connection(srv.url, BOUND_S) as sock:
            sock.sendall(head + b"\r\ncontent-length: 5000\r\n\r\n")
            out, _ = read_to_close(sock)
        assert out.startswith(b"HTTP/1.1 413"), out
        assert b"the limit is 1000" in out
        with raw_connection(srv.url, BOUND_S) as sock:  # a bad key is judged first
            sock.sendall(b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: 5000\r\n\r\n")
            out, _ = read_to_close(sock)
        assert out.startswith(b"HTTP/1.1 401"), out


def test_a_killed_acceptor_is_replaced_and_none_outlives_the_server(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "k", ingest_acceptors=2) as srv:
        pids = _wait_pids(srv)
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            pids = _acceptor_pids(srv)
            time.sleep(0.02)
        assert len(pids) == 2
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = _acceptor_pids(srv)
            if len(now) == 2 and pids[0] not in now:
                break
            time.sleep(0.05)
        now = _acceptor_pids(srv)
        assert len(now) == 2 and pids[0] not in now
        t = int(srv.clock() * 1000) - 60_000
        for i in range(20):  # whichever acceptor takes each connection
            r = _post(srv, "k-1", _cpu("k-1", t + 5000 * i, 1.0))
            assert r.status_code == 200, r.text
            assert r.json() == {"accepted_samples": 1, "duplicate_samples": 0}
        for pid in now:
            assert psutil.Process(pid).ppid() == os.getpid()
    for pid in now:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_acceptors_need_plain_http(tmp_path: Path) -> None:
    from hostpulse.server.testing import self_signed

    cert, key = self_signed(tmp_path)
    with pytest.raises(ValidationError, match="ingest_acceptors needs plain HTTP"):
        ServerSettings(data_dir=tmp_path, ingest_acceptors=1, tls_cert=cert, tls_key=key)


def _resolved(tmp_path: Path, cpus: set[int]) -> str:
    """``acceptors`` of the default settings in a process that may run on ``cpus`` only."""
    code = (
        f"import os, sys; os.sched_setaffinity(0, {cpus}); "
        "from hostpulse.server.config import ServerSettings; "
        "print(ServerSettings(data_dir=sys.argv[1]).acceptors)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_auto_is_one_acceptor_on_two_cpus_and_none_on_one_or_over_https(tmp_path: Path) -> None:
    """The default: one acceptor where there is a second core for it (these machines have
    two), none on one CPU (another process would only add work), over HTTPS or beside ingest
    worker processes."""
    assert _resolved(tmp_path, {0, 1}) == "1"
    assert _resolved(tmp_path, {0}) == "0"
    from hostpulse.server.testing import self_signed

    cert, key = self_signed(tmp_path)
    tls = ServerSettings(data_dir=tmp_path, tls_cert=cert, tls_key=key)
    assert tls.ingest_acceptors == "auto" and tls.acceptors == 0
    assert ServerSettings(data_dir=tmp_path, ingest_workers=1).acceptors == 0
    assert ServerSettings(data_dir=tmp_path, ingest_acceptors="3").acceptors == 3
    for bad in ("many", "17", "-1", "1.5", True):
        with pytest.raises(ValidationError, match="is not auto or a number of processes 0-16"):
            ServerSettings(data_dir=tmp_path, ingest_acceptors=bad)


def test_the_default_settings_serve_through_an_acceptor(tmp_path: Path) -> None:
    """On two CPUs a server with no ``ingest_acceptors`` set runs one, and an agent's
    request is answered through it."""
    with LiveServer(tmp_path / "d") as srv:
        assert srv.settings.ingest_acceptors == "auto"
        pids = _wait_pids(srv)
        assert len(pids) == 1
        r = _post(srv, "d-1", _cpu("d-1", int(srv.clock() * 1000) - 60_000, 3.0))
        assert r.status_code == 200 and r.json()["accepted_samples"] == 1


@pytest.mark.parametrize(
    "head",
    [
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1",
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: +1",
        b"POST /api/v1/ingest HTTP/1.1\r\nhost: x",  # no length: chunked or none
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked",
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: 1\r\norigin: http://x",
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: 1\r\nexpect: 100-continue",
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length : 1",
        b"POST /api/v1/ingest HTTP/1.1\r\ncontent-length: 1\r\n folded",
        b"POST /api/v1/ingest?x=1 HTTP/1.1\r\ncontent-length: 1",
        b"POST /api/v1/ingest HTTP/1.0\r\ncontent-length: 1",
    ],
)
def test_anything_but_the_plain_form_goes_to_uvicorn(head: bytes) -> None:
    assert parse_head(head) is None


def test_the_plain_form_is_read() -> None:
    head = parse_head(
        b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hpk_a\r\n"
        b"Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: 42\r\nConnection: close"
    )
    assert head is not None
    assert (head.length, head.authorization, head.encoding, head.close) == (
        42,
        b"Bearer hpk_a",
        "gzip",
        True,
    )
