"""Ingest worker processes (``ingest_workers``): a request checked and prepared in a worker
gets exactly the answer the server process gives (accepted, duplicates, the text of a 4xx); a
worker that dies answers its requests in flight 503 + Retry-After (nothing stored) and is
replaced; stopping the server leaves no worker process behind."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from wire import batch, mixed_bodies, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE
from hostpulse.server.ingest.pool import IngestWorkers
from hostpulse.server.testing import Clock, LiveServer

CPU = ("cpu_busy_percent", ())


def _pool(srv: LiveServer) -> IngestWorkers:
    pool = srv.app.state.hp.ingest.workers
    assert pool is not None
    return pool


def _ready_pid(srv: LiveServer, other_than: int | None = None) -> int:
    """The pid of the server's worker once it is ready (a new one when ``other_than``)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        w = _pool(srv).workers[0]
        if w is not None and w.ready and w.pid is not None and w.pid != other_than:
            return w.pid
        time.sleep(0.02)
    raise AssertionError("no ingest worker became ready")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    clock = Clock()
    with (
        LiveServer(tmp_path / "a", clock, ingest_workers=1, max_series_per_host=3) as worker,
        LiveServer(tmp_path / "b", clock, ingest_workers=0, max_series_per_host=3) as inline,
    ):
        yield worker, inline


def _post(
    srv: LiveServer, host: str, body: bytes, encoding: str | None = None, ct: str | None = None
) -> httpx.Response:
    headers = {**srv.agent_headers(host), "content-type": ct or PROTOBUF_CONTENT_TYPE}
    if encoding:
        headers["content-encoding"] = encoding
    return httpx.post(f"{srv.url}/api/v1/ingest", content=body, headers=headers, timeout=60)


def test_worker_answers_as_the_server_process(servers: tuple[LiveServer, LiveServer]) -> None:
    worker, inline = servers
    _ready_pid(worker)
    statuses = []
    for host, body, encoding, ct in mixed_bodies(int(worker.clock() * 1000) - 60_000):
        a = _post(worker, host, body, encoding, ct)
        b = _post(inline, host, body, encoding, ct)
        assert (a.status_code, a.json()) == (b.status_code, b.json()), (host, body[:40])
        statuses.append(a.status_code)
    assert statuses == [200, 200, 200, 422, 422, 422, 422, 422, 400, 400, 415, 415, 403]
    assert _pool(worker).restarts == 0


def test_killed_worker_503_then_replaced(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d", ingest_workers=1) as srv:
        pid = _ready_pid(srv)
        t = int(srv.clock() * 1000) - 60_000
        body = request(batch("k-1", [(t, {CPU: 1.0})])).SerializeToString()
        headers = {**srv.agent_headers("k-1"), "content-type": PROTOBUF_CONTENT_TYPE}
        os.kill(pid, signal.SIGSTOP)  # the request is surely in flight when the worker dies
        with httpx.Client(timeout=60) as client:
            pending = client.build_request(
                "POST", f"{srv.url}/api/v1/ingest", content=body, headers=headers
            )
            answers: list[httpx.Response] = []
            sender = threading.Thread(target=lambda: answers.append(client.send(pending)))
            sender.start()
            deadline = time.monotonic() + 30
            w = _pool(srv).workers[0]
            assert w is not None
            while not w.pending and time.monotonic() < deadline:
                time.sleep(0.01)
            assert w.pending
            os.kill(pid, signal.SIGKILL)
            sender.join(60)
        refused = answers[0]
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert "nothing was stored" in refused.json()["detail"]
        new_pid = _ready_pid(srv, other_than=pid)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        again = httpx.post(f"{srv.url}/api/v1/ingest", content=body, headers=headers, timeout=60)
        assert again.status_code == 200, again.text
        assert again.json() == {"accepted_samples": 1, "duplicate_samples": 0}  # none lost
        assert _pool(srv).restarts == 1
        assert psutil.Process(new_pid).ppid() == os.getpid()
    assert not psutil.pid_exists(new_pid)  # stopped with the server
