"""The whole path on a real server: a breaching sample posted to /api/v1/ingest reaches a real
webhook receiver through the alert engine, and shows up in the alerts API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE
from hostpulse.server.testing import LiveServer

CPU = ("cpu_busy_percent", ())


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []
        self.arrived = threading.Condition()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.bodies) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.arrived.wait(left)
            return list(self.bodies)


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.arrived:
            self.server.bodies.append(json.loads(body))
            self.server.arrived.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    srv = _Receiver()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _alerts_yml(path: Path, hook_url: str) -> Path:
    path.write_text(
        f"""
create_default_rules: false
evaluation_interval: 1s
allow_networks: ["127.0.0.0/8"]
channels:
  - id: hook
    type: webhook
    url: {hook_url}
rules:
  - id: cpu-hot
    metric: cpu_busy_percent
    op: ">"
    warning: 80
    critical: 90
"""
    )
    return path


def _post(srv: LiveServer, host: str, value: float) -> None:
    body = request(batch(host, [(now_ms(), {CPU: value})])).SerializeToString()
    res = httpx.post(
        f"{srv.url}/api/v1/ingest",
        content=body,
        headers={"Content-Type": PROTOBUF_CONTENT_TYPE, **srv.agent_headers(host)},
    )
    assert res.status_code == 200, res.text


def test_a_breaching_sample_reaches_the_webhook_and_the_api(
    tmp_path: Path, receiver: _Receiver
) -> None:
    port = receiver.server_address[1]
    config = _alerts_yml(tmp_path / "alerts.yml", f"http://127.0.0.1:{port}/hook")
    with LiveServer(tmp_path / "data", alerts_config=config) as srv:
        _post(srv, "web-1", 12.0)  # below: nothing is sent
        _post(srv, "web-1", 97.5)
        (sent,) = receiver.wait_for(1)
        assert sent["rule_id"] == "cpu-hot" and sent["severity"] == "critical"
        assert sent["status"] == "critical" and sent["kind"] == "firing"
        (alert,) = sent["alerts"]
        assert alert["host"] == "web-1" and alert["value"] == pytest.approx(97.5)
        active = httpx.get(f"{srv.url}/api/v1/alerts/active", headers=srv.headers("viewer"))
        active = active.json()
        assert [(a["rule_id"], a["host"]) for a in active] == [("cpu-hot", "web-1")]
        # the same breach again within the de-duplication window is not sent twice
        _post(srv, "web-1", 98.0)
        assert len(receiver.wait_for(2, timeout=2.0)) == 1


MEM = ("memory_usage_percent", ())
LOAD = ("cpu_load1", ())


def _post_values(srv: LiveServer, host: str, values: dict[tuple[str, tuple[()]], float]) -> None:
    body = request(batch(host, [(now_ms(), values)])).SerializeToString()
    res = httpx.post(
        f"{srv.url}/api/v1/ingest",
        content=body,
        headers={"Content-Type": PROTOBUF_CONTENT_TYPE, **srv.agent_headers(host)},
    )
    assert res.status_code == 200, res.text


def test_a_rule_added_later_and_a_changed_series_table_are_both_seen(
    tmp_path: Path, receiver: _Receiver
) -> None:
    """The server remembers per host which series the rules read; a new rule and a host whose
    series table changes (the watched series moves to another position) must not be missed."""
    port = receiver.server_address[1]
    config = _alerts_yml(tmp_path / "alerts.yml", f"http://127.0.0.1:{port}/hook")
    with LiveServer(tmp_path / "data", alerts_config=config) as srv:
        _post_values(srv, "db-1", {LOAD: 1.0, MEM: 99.0})  # no rule reads memory yet
        rule = {
            "id": "mem-hot",
            "metric": "memory_usage_percent",
            "op": ">",
            "warning": 80,
            "critical": 90,
        }
        res = httpx.post(f"{srv.url}/api/v1/alerts/rules", json=rule, headers=srv.headers("editor"))
        assert res.status_code == 201, res.text
        # the same table again: now memory is read
        _post_values(srv, "db-1", {LOAD: 1.0, MEM: 95.0})
        (sent,) = receiver.wait_for(1)
        assert (sent["rule_id"], sent["alerts"][0]["value"]) == ("mem-hot", pytest.approx(95.0))
        # the host's table changes so that CPU sits where memory was: each value goes to its
        # own series (a stale table would report 91 as memory)
        _post_values(srv, "db-2", {CPU: 10.0, MEM: 10.0})
        _post_values(srv, "db-2", {MEM: 10.0, CPU: 91.0})
        sent = receiver.wait_for(2)[1]
        assert (sent["rule_id"], sent["alerts"][0]["host"]) == ("cpu-hot", "db-2")
        assert sent["alerts"][0]["value"] == pytest.approx(91.0)
        assert len(receiver.wait_for(3, timeout=1.5)) == 2  # memory 10 % fires nothing


def test_alerts_name_the_host_by_its_hostname_and_show_silences(
    tmp_path: Path, receiver: _Receiver
) -> None:
    """Notifications, /active and /history name a host by the hostname in the store's
    registry, with the id alongside; /active says whether a silence mutes an alert."""
    machine_id = "4f0c9d3e2b1a49c8a7d6e5f4c3b2a190"
    hostname = f"{machine_id}.example"  # what tests/server/wire.py reports as the hostname
    port = receiver.server_address[1]
    config = _alerts_yml(tmp_path / "alerts.yml", f"http://127.0.0.1:{port}/hook")
    with LiveServer(tmp_path / "data", alerts_config=config) as srv:
        _post(srv, machine_id, 97.5)
        (sent,) = receiver.wait_for(1)
        assert sent["summary"] == f"[CRITICAL] cpu-hot on {hostname}"
        assert (sent["alerts"][0]["host"], sent["alerts"][0]["host_name"]) == (
            machine_id,
            hostname,
        )
        api = f"{srv.url}/api/v1/alerts"
        (alert,) = httpx.get(f"{api}/active", headers=srv.headers("viewer")).json()
        assert (alert["host"], alert["host_name"]) == (machine_id, hostname)
        assert (alert["silenced"], alert["silence_id"], alert["silenced_until_ms"]) == (
            False,
            None,
            None,
        )
        history = httpx.get(f"{api}/history", headers=srv.headers("viewer")).json()
        assert {(h["host"], h["host_name"]) for h in history} == {(machine_id, hostname)}
        silence = httpx.post(
            f"{api}/silences",
            json={"hosts": [machine_id], "ends_at": "2999-01-01T00:00:00Z"},
            headers=srv.headers("editor"),
        )
        assert silence.status_code == 201, silence.text
        (alert,) = httpx.get(f"{api}/active", headers=srv.headers("viewer")).json()
        assert alert["silenced"] is True and alert["silence_id"] == silence.json()["id"]
        assert alert["silenced_until_ms"] == 32472144000000  # 2999-01-01T00:00:00Z
