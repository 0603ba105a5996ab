"""Overload on a real server over loopback: with a tiny admission cap, a flood of concurrent
ingest requests is answered promptly, each with 200 or 503 + Retry-After, and a refused
request stores nothing. A real agent that meets 503 delivers everything later, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, codec
from hostpulse.server.testing import LiveServer
from hostpulse.store.types import Tier

CLIENT_TIMEOUT_S = 15.0  # "prompt": far below an agent's own timeout, and never reached
FLOOD = 32


def flood_body(host: str, snapshots: int = 50) -> bytes:
    start = now_ms() - 120_000
    snaps = [
        (start + 1000 * i, {("cpu_busy_percent", ()): float(i), ("cpu_load1", ()): 0.5})
        for i in range(snapshots)
    ]
    return codec.encode(request(batch(host, snaps)), encoding="gzip")


def post(client: httpx.Client, srv: LiveServer, host: str, body: bytes) -> httpx.Response:
    """``body`` (``host``'s batch) with that host's agent key."""
    return client.post(
        srv.url + "/api/v1/ingest",
        content=body,
        headers={
            "content-type": PROTOBUF_CONTENT_TYPE,
            "content-encoding": "gzip",
            **srv.agent_headers(host),
        },
    )


def one_flood(srv: LiveServer, round_: int) -> dict[str, httpx.Response]:
    """FLOOD requests at once, each from its own host and connection."""
    hosts = [f"flood-{round_}-{i}" for i in range(FLOOD)]
    bodies = {h: flood_body(h) for h in hosts}
    for h in hosts:
        srv.agent_key(h)  # enrolled before the flood
    gate = threading.Barrier(FLOOD)

    def send(host: str) -> httpx.Response:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            gate.wait(10)
            return post(client, srv, host, bodies[host])

    with ThreadPoolExecutor(FLOOD) as pool:
        return dict(zip(hosts, pool.map(send, hosts), strict=True))


@pytest.mark.parametrize("fast_ingest", [True, False], ids=["fast-path", "framework-route"])
def test_a_flood_is_answered_promptly_and_refusals_store_nothing(
    tmp_path: Path, fast_ingest: bool
) -> None:
    with LiveServer(
        tmp_path / "data",
        fast_ingest=fast_ingest,
        ingest_max_pending=1,
        overload_retry_after=3,
    ) as srv:
        answers: dict[str, httpx.Response] = {}
        for round_ in range(6):  # until both outcomes were seen (the first round nearly always)
            answers.update(one_flood(srv, round_))
            codes = {r.status_code for r in answers.values()}
            if {200, 503} <= codes:
                break
        assert codes == {200, 503}, codes
        for host, r in answers.items():
            if r.status_code == 503:
                assert r.headers["retry-after"] == "3", host
                assert r.json()["detail"].startswith("server busy:")
                assert srv.call(srv.store.host(host)) is None, f"{host} was refused but stored"
            else:
                assert r.json() == {"accepted_samples": 100, "duplicate_samples": 0}
                res = srv.call(
                    srv.store.query_range(host, "cpu_busy_percent", 0, 2**62, tier=Tier.RAW)
                )
                assert sum(len(s.points) for s in res.series) == 50
        # the refused hosts can send again once the flood is over
        refused = [h for h, r in answers.items() if r.status_code == 503][:3]
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            for host in refused:
                assert post(client, srv, host, flood_body(host)).status_code == 200
        assert srv.call(srv.store.host(refused[0])) is not None


def test_an_agent_that_meets_503_delivers_everything_later_exactly_once(tmp_path: Path) -> None:
    host_id = "overloaded-agent"
    with LiveServer(tmp_path / "data", ingest_max_pending=1, overload_retry_after=1) as srv:
        log = tmp_path / "agent.log"
        stop_flood = threading.Event()

        def flood(worker: int) -> None:
            host = f"flood-{worker}"  # the same batch again and again: each one is admitted
            body = flood_body(host, 20)  # (or refused) before it is found to be a duplicate
            with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
                for _ in range(100_000):
                    if stop_flood.is_set():
                        return
                    post(client, srv, host, body)

        for w in range(6):
            srv.agent_key(f"flood-{w}")

        workers = [threading.Thread(target=flood, args=(w,), daemon=True) for w in range(6)]
        for w in workers:
            w.start()
        token = srv.enrollment_token(host_id)
        agent = start_agent(srv.url, host_id, tmp_path / "spool", log, token)
        try:
            deadline = time.monotonic() + 60
            while "HTTP 503" not in log.read_text():
                assert agent.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the agent never met a 503"
                time.sleep(0.2)
            stop_flood.set()
            for w in workers:
                w.join(CLIENT_TIMEOUT_S + 5)
            time.sleep(3)  # the spooled snapshots are re-sent after Retry-After
        finally:
            stop_flood.set()
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(30)
        assert code == 0, log.read_text()
        text = log.read_text()
        assert "retrying in" in text and "server refused" not in text
        res = srv.call(srv.store.query_range(host_id, "memory_used_bytes", 0, 2**62, tier=Tier.RAW))
    stamps = [p.ts_ms for s in res.series for p in s.points]
    queued = int(_counter(tmp_path / "spool", "queued"))
    assert _counter(tmp_path / "spool", "sent") == queued
    assert _counter(tmp_path / "spool", "retried") >= 1
    assert len(stamps) == len(set(stamps)) == queued


def start_agent(
    url: str, host_id: str, spool: Path, log: Path, enroll: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env.update(HOSTPULSE_SHIPPER__BACKOFF_MAX="2", HOSTPULSE_SHIPPER__FLUSH_TIMEOUT="10")
    exe = str(Path(sys.executable).with_name("hostpulse"))
    args = [exe, "agent", "--server", url, "--interval", "1", "--host-id", host_id]
    args += ["--spool-dir", str(spool), "--log-level", "info", "--enroll", enroll]
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def _counter(spool: Path, name: str) -> int:
    import json

    counters: dict[str, int] = json.loads((spool / "state.json").read_text())["counters"]
    return counters.get(name, 0)


STORE_CANNOT_WRITE = """
import asyncio, resource, sys, time
sys.path.insert(0, sys.argv[2])
from wire import batch, now_ms, request
from hostpulse.protocol import codec
from hostpulse.server.ingest import IngestError, IngestLimits, IngestService
from hostpulse.store import open_store

def body(t):
    return codec.encode(request(batch("h", [(t, {("cpu_busy_percent", ()): 1.0})])))

async def main() -> None:
    store = open_store(sys.argv[1])
    await store.start()
    service = IngestService(store, IngestLimits(overload_retry_after=7), time.time)
    t = now_ms() - 60_000
    await service.ingest_body(body(t), "application/x-protobuf", "gzip")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)  # the log cannot grow: a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (store.wal.current.path.stat().st_size, hard))
    try:
        await service.ingest_body(body(t + 1000), "application/x-protobuf", "gzip")
        print("stored")
    except IngestError as exc:
        print(exc.status, exc.headers, exc.reason)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    await service.ingest_body(body(t + 2000), "application/x-protobuf", "gzip")
    print((await store.stats()).raw_samples)
    await store.close()

asyncio.run(main())
"""


def test_a_store_that_cannot_write_answers_503_with_retry_after(tmp_path: Path) -> None:
    # a real failing write (a file size limit, as a full disk): the agent gets a 503 it retries
    # after Retry-After, with the reason, instead of a 500; nothing of the request is stored
    r = subprocess.run(
        [sys.executable, "-c", STORE_CANNOT_WRITE, str(tmp_path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    refused, samples = r.stdout.splitlines()
    assert refused.startswith("503 {'Retry-After': '7'} the store cannot write: File too large")
    assert "nothing was stored" in refused
    assert samples == "2"
