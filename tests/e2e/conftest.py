"""Fixtures of the whole-system tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from e2ekit import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # notifications may go to the loopback receiver below (the SSRF guard refuses it otherwise)
    alerts_yml = tmp_path / "alerts.yml"
    alerts_yml.write_text("allow_networks: ['127.0.0.1/32']\n")
    env = {"HOSTPULSE_LIVE_HEARTBEAT": "2", "HOSTPULSE_ALERTS_CONFIG": str(alerts_yml)}
    srv = Server(tmp_path / "data", tmp_path / "server.log", env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class Receiver:
    """A webhook receiver on a free loopback port that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r
