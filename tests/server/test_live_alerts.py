"""Alert events on the live WebSocket against a real server: a client subscribed with
``alerts=true`` gets a snapshot, then each alert as it fires, is silenced and ends, without
polling; a client that did not subscribe gets none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from test_live_ws import next_frame, open_ws
from websockets.asyncio.client import ClientConnection
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE
from hostpulse.protocol.live_pb2 import AlertEvents, LiveFrame
from hostpulse.server.testing import LiveServer

CPU = ("cpu_busy_percent", ())


def _alerts_yml(path: Path) -> Path:
    path.write_text(
        """
create_default_rules: false
evaluation_interval: 1s
rules:
  - id: cpu-hot
    name: CPU hot
    metric: cpu_busy_percent
    op: ">"
    warning: 80
    critical: 90
"""
    )
    return path


async def _post(srv: LiveServer, http: httpx.AsyncClient, host: str, value: float) -> None:
    body = request(batch(host, [(now_ms(), {CPU: value})])).SerializeToString()
    headers = {"content-type": PROTOBUF_CONTENT_TYPE, **srv.agent_headers(host)}
    r = await http.post("/api/v1/ingest", content=body, headers=headers)
    assert r.status_code == 200, r.text


async def _events(ws: ClientConnection) -> AlertEvents:
    return (await next_frame(ws, "alerts")).alerts


@pytest.fixture
def server(tmp_path: Path) -> LiveServer:
    return LiveServer(
        tmp_path / "data", alerts_config=_alerts_yml(tmp_path / "alerts.yml"), live_heartbeat=0.5
    )


def test_alerts_are_pushed_as_they_fire_are_silenced_and_end(server: LiveServer) -> None:
    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            open_ws(server, "alerts=true") as ws,
            open_ws(server, "fleet=true") as other,
        ):
            first = LiveFrame.FromString(await ws.recv(decode=False))
            assert first.subscribed.alerts
            snap = await _events(ws)
            assert snap.snapshot and list(snap.alerts) == []

            await _post(server, http, "web-1", 97.5)
            fired = await _events(ws)
            assert not fired.snapshot
            (alert,) = fired.alerts
            assert (alert.rule_id, alert.rule_title, alert.host) == ("cpu-hot", "CPU hot", "web-1")
            assert alert.host_name == "web-1.example"
            assert (alert.state, alert.severity) == ("firing", "critical")
            assert alert.value == pytest.approx(97.5) and not alert.silenced

            # the same as GET /alerts/active says
            (api,) = (
                await http.get("/api/v1/alerts/active", headers=server.headers("viewer"))
            ).json()
            assert api["id"] == alert.id and api["fired_at_ms"] == alert.fired_at_ms

            # a silence: every client hears that the alert is now silenced
            r = await http.post(
                "/api/v1/alerts/silences",
                json={"hosts": ["web-1"], "ends_at": "2999-01-01T00:00:00Z"},
                headers=server.headers("editor"),
            )
            assert r.status_code == 201, r.text
            silenced = await _events(ws)
            while not any(a.silenced for a in silenced.alerts):
                silenced = await _events(ws)
            (muted,) = silenced.alerts
            assert muted.id == alert.id and muted.silence_id == r.json()["id"]
            assert muted.silenced_until_ms == 32472144000000

            # back to normal: the alert ends
            await _post(server, http, "web-1", 10.0)
            ended = await _events(ws)
            while alert.id not in ended.ended:
                ended = await _events(ws)
            assert list(ended.alerts) == []

            # a client that did not ask for alerts got none
            async with asyncio.timeout(1.5):
                while True:
                    frame = LiveFrame.FromString(await other.recv(decode=False))
                    assert frame.WhichOneof("kind") != "alerts"
                    if frame.WhichOneof("kind") == "heartbeat":
                        break

    with server:
        asyncio.run(run())


def test_subscribing_later_sends_a_snapshot_of_the_active_alerts(server: LiveServer) -> None:
    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            open_ws(server, "") as ws,
        ):
            assert not (await next_frame(ws, "subscribed")).subscribed.alerts
            await _post(server, http, "db-1", 85.0)
            for _ in range(400):  # the engine decides on ingest; bounded anyway
                active = await http.get("/api/v1/alerts/active", headers=server.headers("viewer"))
                if active.json():
                    break
                await asyncio.sleep(0.05)
            await ws.send('{"hosts": [], "alerts": true}')
            sub = await next_frame(ws, "subscribed")
            assert sub.subscribed.alerts
            snap = await _events(ws)
            assert snap.snapshot
            assert [(a.host, a.severity, a.state) for a in snap.alerts] == [
                ("db-1", "warning", "firing")
            ]
            await ws.send('{"alerts": "yes"}')
            err = await next_frame(ws, "error")
            assert err.error.message == "alerts: must be true or false"

    with server:
        asyncio.run(run())
