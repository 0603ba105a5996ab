"""The live WebSocket against a real server: subscriptions, frames for ingested samples (protobuf
and JSON), heartbeat, and a stalled client dropped while ingest goes on."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, IngestRequest
from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.testing import LiveServer

DEADLINE_S = 20.0


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path / "data", live_heartbeat=0.3, live_outbox=4)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def ws_url(srv: LiveServer, query: str) -> str:
    return srv.url.replace("http://", "ws://") + "/api/v1/ws?" + query


def open_ws(srv: LiveServer, query: str, **kw: Any) -> connect:
    """A viewer's connection, its access token offered as a subprotocol (as the dashboard does)."""
    protocols = [Subprotocol("hostpulse"), Subprotocol("bearer." + srv.token("viewer"))]
    return connect(ws_url(srv, query), proxy=None, compression=None, subprotocols=protocols, **kw)


async def post(srv: LiveServer, client: httpx.AsyncClient, req: IngestRequest) -> None:
    """As the agent of the request's (single) host, with its own key."""
    headers = {"content-type": PROTOBUF_CONTENT_TYPE}
    headers.update(srv.agent_headers(req.batches[0].host.host_id))
    r = await client.post("/api/v1/ingest", content=req.SerializeToString(), headers=headers)
    assert r.status_code == 200, r.text


async def next_frame(ws: ClientConnection, kind: str) -> LiveFrame:
    """The next protobuf frame of ``kind`` (skipping heartbeats and others), within the deadline."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            frame = LiveFrame.FromString(await ws.recv(decode=False))
            if frame.WhichOneof("kind") == kind:
                return frame


def sample(host: str, ts: int, cpu: float, mem: float) -> IngestRequest:
    values = {
        ("cpu_busy_percent", ()): cpu,
        ("memory_usage_percent", ()): mem,
        ("filesystem_usage_percent", (("device", "sda1"), ("mountpoint", "/"))): 40.0,
        ("filesystem_usage_percent", (("device", "sdb1"), ("mountpoint", "/data"))): 75.0,
        ("network_receive_bytes_per_second", (("interface", "eth0"),)): 1000.0,
        ("network_receive_bytes_per_second", (("interface", "eth1"),)): 500.0,
        ("network_receive_bytes_per_second", (("interface", "lo"),)): 99999.0,
    }
    return request(batch(host, [(ts, values)], interval=1.0))


def test_subscribed_clients_receive_ingested_samples(live_server: LiveServer) -> None:
    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=live_server.url, timeout=10) as http,
            open_ws(live_server, "hosts=web-1&fleet=true") as ws,
        ):
            first = LiveFrame.FromString(await ws.recv(decode=False))
            assert first.subscribed.hosts == ["web-1"]
            assert first.subscribed.fleet
            assert first.subscribed.heartbeat_seconds == pytest.approx(0.3)
            ts = now_ms()
            await post(live_server, http, sample("db-1", ts, 10.0, 20.0))
            await post(live_server, http, sample("web-1", ts, 55.5, 66.6))
            samples: list[LiveFrame] = []
            summaries: dict[str, Any] = {}
            async with asyncio.timeout(DEADLINE_S):
                while not samples or len(summaries) < 2:
                    frame = LiveFrame.FromString(await ws.recv(decode=False))
                    if frame.HasField("samples"):
                        samples.append(frame)
                    elif frame.HasField("fleet"):
                        summaries.update({h.host_id: h for h in frame.fleet.hosts})
            got = samples[0].samples
            # only the subscribed host's samples come through, with their series definitions
            assert [f.samples.host.host_id for f in samples] == ["web-1"]
            snap = got.snapshots[0]
            assert snap.timestamp_ms == ts
            by_metric = {
                got.series[i].metric: v for i, v in zip(snap.series_index, snap.values, strict=True)
            }
            assert by_metric["cpu_busy_percent"] == 55.5
            web = summaries["web-1"]
            assert web.hostname == "web-1.example"
            assert web.cpu_percent == 55.5 and web.memory_percent == pytest.approx(66.6)
            assert web.disk_percent == 75.0  # the fullest filesystem
            assert web.net_rx_bytes_per_second == 1500.0  # loopback left out
            assert not web.HasField("net_tx_bytes_per_second")
            assert summaries["db-1"].cpu_percent == 10.0

    asyncio.run(run())


def test_json_frames_and_changing_the_subscription(live_server: LiveServer) -> None:
    async def recv_json(ws: ClientConnection, key: str) -> dict[str, Any]:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                msg = await ws.recv()
                assert isinstance(msg, str)
                data: dict[str, Any] = json.loads(msg)
                if key in data:
                    return data

    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=live_server.url, timeout=10) as http,
            open_ws(live_server, "format=json") as ws,
        ):
            assert (await recv_json(ws, "subscribed"))["subscribed"].get("hosts", []) == []
            await ws.send(json.dumps({"hosts": ["app-7"], "colour": 1}))
            err = await recv_json(ws, "error")
            assert "colour" in err["error"]["message"]
            await ws.send(json.dumps({"hosts": "app-7"}))
            assert "hosts" in (await recv_json(ws, "error"))["error"]["message"]
            await ws.send(json.dumps({"hosts": ["app-7"]}))
            assert (await recv_json(ws, "subscribed"))["subscribed"]["hosts"] == ["app-7"]
            ts = now_ms()
            await post(live_server, http, sample("app-7", ts, 12.5, 30.0))
            frame = (await recv_json(ws, "samples"))["samples"]
            assert frame["host"]["host_id"] == "app-7"
            assert frame["snapshots"][0]["timestamp_ms"] == str(ts)
            assert 12.5 in frame["snapshots"][0]["values"]

    asyncio.run(run())


def test_heartbeat_arrives_while_idle(live_server: LiveServer) -> None:
    async def run() -> None:
        async with open_ws(live_server, "fleet=true") as ws:
            started = time.time() * 1000
            beats = [await next_frame(ws, "heartbeat"), await next_frame(ws, "heartbeat")]
            assert all(b.heartbeat.server_time_ms >= started - 1000 for b in beats)
            assert beats[1].heartbeat.server_time_ms > beats[0].heartbeat.server_time_ms

    asyncio.run(run())


def big_request(host: str, start_ms: int, rng: random.Random) -> IngestRequest:
    """150 series x 120 snapshots of noise (incompressible: fills socket buffers quickly)."""
    labels = [(("cpu", str(c)),) for c in range(150)]
    snaps = [
        (start_ms + s * 1000, {("cpu_core_busy_percent", lab): rng.random() for lab in labels})
        for s in range(120)
    ]
    return request(batch(host, snaps, interval=1.0))


def test_stalled_client_is_dropped_and_ingest_goes_on(live_server: LiveServer) -> None:
    rng = random.Random(7)
    n_requests = 30

    async def run() -> None:
        # the stalled client: small receive buffer, reads nothing until ingest is over
        sock = socket.create_connection(("127.0.0.1", int(live_server.url.rsplit(":", 1)[1])))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        async with (
            httpx.AsyncClient(base_url=live_server.url, timeout=10) as http,
            # (no keepalive pings of its own: on a loaded machine their timeout closed it
            # first, 1011, before it read the server's close)
            open_ws(
                live_server, "hosts=big-1&format=json", sock=sock, max_queue=1, ping_interval=None
            ) as slow,
            open_ws(live_server, "hosts=big-1", max_size=None) as fast,
        ):
            await next_frame(fast, "subscribed")
            received = 0

            async def read_fast() -> None:
                nonlocal received
                while received < n_requests:
                    await next_frame(fast, "samples")
                    received += 1

            reader = asyncio.create_task(read_fast())
            start = now_ms() - 86_400_000
            async with asyncio.timeout(120):  # a blocked ingest would hang here
                for i in range(n_requests):
                    await post(live_server, http, big_request("big-1", start + i * 120_000, rng))
            await asyncio.wait_for(reader, DEADLINE_S)
            assert received == n_requests  # the reading client got every batch
            # the stalled client was cut off: it sees the close (code 1013) once it reads
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(DEADLINE_S):
                    while True:
                        await slow.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
            # and the server still serves and ingests
            await post(live_server, http, sample("big-1", now_ms(), 1.0, 2.0))

    asyncio.run(run())


def _closed_code(url: str, token: str) -> tuple[int, float]:
    """Connect to ``url`` with ``token`` (as the dashboard offers it) and read until the server
    closes: (close code, seconds taken)."""
    protocols = [Subprotocol("hostpulse"), Subprotocol("bearer." + token)]

    async def run() -> tuple[int, float]:
        started = time.monotonic()
        async with connect(url, proxy=None, compression=None, subprotocols=protocols) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(DEADLINE_S):
                    while True:
                        await ws.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, time.monotonic() - started

    return asyncio.run(run())


def test_the_socket_closes_when_its_access_token_expires(tmp_path: Path) -> None:
    # issue 13 item 11: frames kept coming after the token expired; now 4401 at its expiry
    from hostpulse.server.auth import tokens

    with LiveServer(tmp_path / "data", live_heartbeat=0.3) as srv:
        srv.token("viewer")  # creates the user
        secret = tokens.load_or_create_secret(srv.settings.data_dir)
        # exp is whole seconds, so a 5 s token has 4-5 s left: enough for the handshake on a
        # loaded 2-core machine (a 2 s token had 1-2 s and was once refused at the door)
        short = tokens.issue_access(secret, "viewer", 5)
        code, took = _closed_code(ws_url(srv, "fleet=true"), short)
        assert code == 4401
        assert 2.0 <= took < DEADLINE_S


def test_the_socket_closes_when_its_user_is_deleted(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "data", live_heartbeat=0.3, live_auth_recheck=0.5) as srv:
        url = ws_url(srv, "fleet=true")
        admin = srv.headers("admin")
        viewer = srv.token("viewer")

        def delete_soon() -> None:
            time.sleep(1.0)
            httpx.delete(f"{srv.url}/api/v1/users/viewer", headers=admin, timeout=30)

        import threading

        deleter = threading.Thread(target=delete_soon)
        deleter.start()
        try:
            code, _ = _closed_code(url, viewer)
        finally:
            deleter.join()
        assert code == 4401


def test_frames_are_not_compressed_per_client(live_server: LiveServer) -> None:
    """A browser offers permessage-deflate; the server declines it (deflating each frame once
    per client cost more CPU than the rest of the fan-out: run.py) and frames still arrive."""

    async def run() -> None:
        protocols = [Subprotocol("hostpulse"), Subprotocol("bearer." + live_server.token("viewer"))]
        url = ws_url(live_server, "fleet=true")
        async with connect(url, proxy=None, compression="deflate", subprotocols=protocols) as ws:
            assert ws.response is not None
            assert "sec-websocket-extensions" not in ws.response.headers
            assert (await next_frame(ws, "heartbeat")).heartbeat.server_time_ms > 0

    asyncio.run(run())
