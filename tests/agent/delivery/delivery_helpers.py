"""Helpers for the delivery tests.

A scripted ingest receiver: a real HTTP server on 127.0.0.1 that answers a script of
statuses (or cuts the connection after reading and storing the body), records every arrival
and keeps a de-duplicated view of the samples keyed by (host, series, timestamp), as the real server
does."""

from __future__ import annotations

import gzip
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hostpulse import catalog
from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.delivery.spool import Spool
from hostpulse.protocol import HostBatch, IngestRequest, SeriesDef

PLAIN = [m.key for m in catalog.METRICS if not m.labels][:8]

SampleKey = tuple[str, str, int]


@dataclass(frozen=True)
class Step:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"accepted_samples": 0}'
    cut: bool = False  # read and store the body, then close without answering
    hang: float = 0.0  # seconds to wait before answering (longer than the client's timeout)


@dataclass
class Arrival:
    at: float
    headers: dict[str, str]
    raw: bytes  # decompressed body
    request: IngestRequest
    answered: int | None  # status, None when the connection was cut

    def sample_keys(self) -> list[SampleKey]:
        out: list[SampleKey] = []
        for b in self.request.batches:
            for snap in b.snapshots:
                for i in snap.series_index:
                    out.append((b.host.host_id, b.series[i].metric, snap.timestamp_ms))
        return out

    def timestamps(self) -> list[int]:
        return [s.timestamp_ms for b in self.request.batches for s in b.snapshots]


@dataclass
class Receiver:
    script: list[Step] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    stored: dict[SampleKey, int] = field(default_factory=dict)  # key -> times received
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)
    port: int = 0
    tls: ssl.SSLContext | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                raw = gzip.decompress(body) if self.headers.get("Content-Encoding") else body
                req = IngestRequest()
                req.ParseFromString(raw)
                with receiver.lock:
                    step = receiver.script.pop(0) if receiver.script else Step()
                    arrival = Arrival(
                        time.monotonic(),
                        dict(self.headers.items()),
                        raw,
                        req,
                        None if step.cut else step.status,
                    )
                    if step.cut or 200 <= step.status < 300:  # "committed"
                        for k in arrival.sample_keys():
                            receiver.stored[k] = receiver.stored.get(k, 0) + 1
                    receiver.arrivals.append(arrival)
                    receiver.arrived.notify_all()
                if step.hang:
                    time.sleep(step.hang)
                if step.cut:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(step.status)
                for k, v in step.headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(step.body)))
                self.end_headers()
                self.wfile.write(step.body)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Arrival]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.arrivals) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} requests, got {len(self.arrivals)}"
                self.arrived.wait(left)
            return list(self.arrivals)

    def wait_stored(self, keys: set[SampleKey], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not keys <= self.stored.keys():
                left = deadline - time.monotonic()
                assert left > 0, f"{len(keys - self.stored.keys())} samples never arrived"
                self.arrived.wait(left)


def make_batch(ts_ms: int, host: str = "host-a", seq: int = 0) -> HostBatch:
    b = HostBatch()
    b.host.host_id = host
    b.host.hostname = host
    for key in PLAIN:
        b.series.append(SeriesDef(metric=key))
    snap = b.snapshots.add()
    snap.timestamp_ms = ts_ms
    snap.sequence = seq
    snap.series_index.extend(range(len(PLAIN)))
    snap.values.extend(float(ts_ms % 1000 + i) for i in range(len(PLAIN)))
    return b


def keys_of(batch: HostBatch) -> set[SampleKey]:
    return {
        (batch.host.host_id, batch.series[i].metric, s.timestamp_ms)
        for s in batch.snapshots
        for i in s.series_index
    }


@dataclass
class Agent:
    """A shipper over a real spool in tmp_path, pointed at a receiver."""

    spool_dir: Path
    settings: ShipperSettings
    spool_settings: SpoolSettings
    shipper: Shipper | None = None

    def start(self) -> Shipper:
        spool = Spool(self.spool_settings)
        self.shipper = Shipper(self.settings, spool, fsync_interval=0.2)
        self.shipper.start()
        return self.shipper

    def close(self, timeout: float = 2.0) -> None:
        if self.shipper is not None:
            self.shipper.close(timeout)
            self.shipper = None


MakeAgent = Callable[..., Agent]


def fast_settings(url: str, **kw: object) -> ShipperSettings:
    base: dict[str, object] = {
        "server": url,
        "api_key": "k-123",
        "timeout": 2.0,
        "backoff_min": 0.05,
        "backoff_max": 0.4,
        "drain_pause": 0.0,
    }
    base.update(kw)
    return ShipperSettings(**base)  # type: ignore[arg-type]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key)]
    args += ["-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


# --- fixtures: test modules import them (a conftest.py here would shadow tests/cli's, which
# its tests import as the module "conftest")


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(name="make_agent")
def make_agent_fixture(tmp_path: Path) -> Iterator[MakeAgent]:
    agents: list[Agent] = []

    def make(url: str, *, spool: dict[str, object] | None = None, **kw: object) -> Agent:
        sp = SpoolSettings(dir=str(tmp_path / "spool"), **(spool or {}))  # type: ignore[arg-type]
        a = Agent(tmp_path / "spool", fast_settings(url, **kw), sp)
        agents.append(a)
        return a

    try:
        yield make
    finally:
        for a in agents:
            a.close(0.5)
