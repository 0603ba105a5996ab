"""Real processes for whole-system delivery tests: ``hostpulse server`` and ``hostpulse agent``
on loopback, and a direct read of what the server stored."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from hostpulse.server.config import ServerSettings
from hostpulse.store import open_store
from hostpulse.store.types import Tier

HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))
HOST_ID = "delivery-test-host"
ADMIN_PASSWORD = "delivery-" + os.urandom(8).hex()
METRIC = "memory_used_bytes"  # present in every snapshot (memory runs at the agent interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env.update(extra)
    return env


class Proc:
    """A child process whose output goes to a log file; stopped by PID, never by name."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.args = args
        self.log_path = log
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL if it does not exit in time); the exit status."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.args[1]} did not stop on SIGTERM in {timeout} s") from None

    def kill(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> Proc:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()


def start_server(data_dir: Path, port: int, log: Path, *extra: str, ca: Path | None = None) -> Proc:
    """``hostpulse server`` with ``extra`` flags; ``ca``: it serves HTTPS with a certificate
    that CA vouches for."""
    p = Proc(
        [
            HOSTPULSE,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
            *extra,
        ],
        log,
        clean_env(HOSTPULSE_ADMIN_PASSWORD=ADMIN_PASSWORD),
    )
    deadline = time.monotonic() + 60
    scheme = "https" if ca is not None else "http"
    url = f"{scheme}://127.0.0.1:{port}/api/v1/health"
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    while True:
        assert p.alive, "server exited:\n" + p.output()
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                if r.status == 200:
                    return p
        except (urllib.error.URLError, OSError):
            pass
        assert time.monotonic() < deadline, "server did not start:\n" + p.output()
        time.sleep(0.1)


def enrollment_token(server_url: str, host_id: str = HOST_ID) -> str:
    """A single-use token for ``host_id``, created by the admin through the API."""
    from hostpulse.server.testing import enrollment_token as create
    from hostpulse.server.testing import login

    admin = login(server_url, "admin", ADMIN_PASSWORD)["access_token"]
    return create(server_url, admin, host_id)


def host_key(server_url: str, host_id: str = HOST_ID) -> str:
    """Enroll ``host_id`` through the API: its agent key."""
    from hostpulse.server.testing import enroll

    return enroll(server_url, host_id, enrollment_token(server_url, host_id))


def start_agent(
    server_url: str, spool_dir: Path, log: Path, *extra: str, enroll: str | None = None, **env: str
) -> Proc:
    """An agent collecting every second and shipping to ``server_url``; short backoff so a
    test does not wait a minute after an outage. ``enroll``: an enrollment token the agent
    exchanges for its key first (saved beside the spool, used by the next starts too)."""
    settings = {
        "HOSTPULSE_SHIPPER__BACKOFF_MAX": "2",
        "HOSTPULSE_SHIPPER__TIMEOUT": "5",
        "HOSTPULSE_SHIPPER__FLUSH_TIMEOUT": "10",
        "HOSTPULSE_SPOOL__FSYNC_INTERVAL": "0.5",
    }
    settings.update(env)
    return Proc(
        [
            HOSTPULSE,
            "agent",
            "--server",
            server_url,
            "--interval",
            "1",
            "--host-id",
            HOST_ID,
            "--spool-dir",
            str(spool_dir),
            "--log-level",
            "info",
            *extra,
            *(["--enroll", enroll] if enroll else []),
        ],
        log,
        clean_env(**settings),
    )


def spool_state(spool_dir: Path) -> dict[str, int]:
    """The agent's persistent delivery counters (read after it stopped)."""
    doc = json.loads((spool_dir / "state.json").read_text())
    counters: dict[str, int] = doc["counters"]
    return counters


def stored_timestamps(data_dir: Path, metric: str = METRIC, host: str = HOST_ID) -> list[int]:
    """Every raw timestamp the server stored for ``host``'s ``metric`` (the server must be
    stopped: this opens its store directly)."""

    async def read() -> list[int]:
        store = open_store(ServerSettings(data_dir=data_dir).store_url)
        await store.start()
        try:
            out: list[int] = []
            cursor: str | None = None
            for _ in range(10_000):
                res = await store.query_range(
                    host, metric, 0, 2**62, tier=Tier.RAW, cursor=cursor, limit=10_000
                )
                for s in res.series:
                    out.extend(p.ts_ms for p in s.points)
                cursor = res.next_cursor
                if cursor is None:
                    return out
            raise AssertionError("too many pages")
        finally:
            await store.close()

    return asyncio.run(read())


def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class CuttingProxy:
    """An HTTP proxy in front of the real server that forwards the first ``cut`` requests,
    waits for the server's answer (so the server has committed) and then closes the client's
    connection instead of relaying it: the response is lost. Later requests are relayed."""

    def __init__(self, upstream_port: int, cut: int = 1) -> None:
        self.cut = cut
        self.exchanges: list[tuple[bytes, int, bytes, bool]] = []  # body, status, reply, cut
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request("POST", self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    reply = resp.read()
                    status, resp_headers = resp.status, resp.getheaders()
                finally:
                    conn.close()
                cutting = proxy.cut > 0
                proxy.cut -= 1 if cutting else 0
                proxy.exchanges.append((body, status, reply, cutting))
                if cutting:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for k, v in resp_headers:
                    if k.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
