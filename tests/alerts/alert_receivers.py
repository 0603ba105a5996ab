"""Real receivers on loopback for the channel tests: an HTTP server and an SMTP server."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK_ALLOW = ("127.0.0.0/8", "::1/128")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every request; answers with the queued statuses, then 200."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    redirect_to: str = ""
    hold: threading.Event | None = None
    hold_rule: str = ""
    """With ``hold``: only notifications of this rule are held (all when empty)."""
    arrived: list[str] = field(default_factory=list)
    """The rule_id of every request as it arrives, before any hold."""
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"got {len(self.requests)} requests, wanted {count}")
                self.cond.wait(left)
            return list(self.requests)


def _handler(rx: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            try:
                rule = str(json.loads(body).get("rule_id", ""))
            except (ValueError, AttributeError):
                rule = ""
            with rx.cond:
                rx.arrived.append(rule)
            if rx.hold is not None and rx.hold_rule in ("", rule):
                rx.hold.wait(20)
            with rx.cond:
                rx.requests.append(
                    Received(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                status = rx.statuses.pop(0) if rx.statuses else 200
                rx.cond.notify_all()
            if rx.redirect_to:
                self.send_response(302)
                self.send_header("Location", rx.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = b'{"ok":true}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    rx = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
    server.daemon_threads = True
    rx.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rx
    finally:
        if rx.hold is not None:
            rx.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailBox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.cond:
            self.messages.append(envelope)
            self.cond.notify_all()
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Envelope]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"got {len(self.messages)} mails, wanted {count}")
                self.cond.wait(left)
            return list(self.messages)


@dataclass
class SmtpServer:
    port: int
    box: MailBox
    ca_file: str


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return key, cert


@pytest.fixture
def smtps_server(tls_cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """SMTP over implicit TLS (port 465 style), no auth."""
    import ssl

    key, cert = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        yield SmtpServer(port, box, str(cert))
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(tls_cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    import ssl

    key, cert = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"alerts",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    box = MailBox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield SmtpServer(port, box, str(cert))
    finally:
        controller.stop()
