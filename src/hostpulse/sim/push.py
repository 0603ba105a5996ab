"""Push simulated hosts to a server: live (one snapshot per host per interval) or back-filled.

Each simulated host is an agent of its own: it enrolls with an enrollment token
(``enroll_hosts``, a multi-use token for a fleet) and pushes only its own batches with its own
key, as real agents do; there is no key that may speak for several hosts."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
import numpy as np

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, IngestRequest, codec
from hostpulse.sim.build import LiveEncoder, host_batch
from hostpulse.sim.model import SimHost, make_profile
from hostpulse.sim.wire import Answer, Pool, WireError

logger = logging.getLogger(__name__)
INGEST_PATH = "/api/v1/ingest"
ENROLL_PATH = "/api/v1/agent/enroll"
Keys = Mapping[str, str]
"""host_id -> that host's agent key."""


class EnrollError(Exception):
    pass


@dataclass(slots=True)
class PushStats:
    requests: int = 0
    samples: int = 0
    failures: int = 0


def make_hosts(count: int, seed: int = 0) -> list[SimHost]:
    return [SimHost(make_profile(i, seed), seed) for i in range(count)]


async def enroll_hosts(
    client: httpx.AsyncClient, hosts: list[SimHost], token: str, *, concurrency: int = 32
) -> dict[str, str]:
    """Enroll every host with ``token`` (multi-use for more than one host): their keys."""
    sem = asyncio.Semaphore(concurrency)

    async def one(host: SimHost) -> tuple[str, str]:
        async with sem:
            r = await client.post(ENROLL_PATH, json={"token": token, "host_id": host.host_id})
        if r.status_code != 201:
            detail = r.json().get("detail") if r.content else ""
            raise EnrollError(f"enrolling {host.host_id}: HTTP {r.status_code}: {detail}")
        return host.host_id, str(r.json()["key"])

    return dict(await asyncio.gather(*(one(h) for h in hosts)))


Send = Callable[[bytes, dict[str, str]], Awaitable[Answer]]
"""POSTs a body with headers to the ingest path; raises ``WireError`` when no answer came."""


def httpx_sender(client: httpx.AsyncClient) -> Send:
    async def send(body: bytes, headers: dict[str, str]) -> Answer:
        try:
            r = await client.post(INGEST_PATH, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise WireError(repr(exc)) from exc
        return Answer(r.status_code, dict(r.headers), r.content)

    return send


def pool_sender(pool: Pool) -> Send:
    async def send(body: bytes, headers: dict[str, str]) -> Answer:
        return await pool.post(INGEST_PATH, body, headers)

    return send


async def post(
    client: httpx.AsyncClient,
    request: IngestRequest,
    stats: PushStats,
    key: str,
    *,
    retries: int = 3,
) -> None:
    """POST ``request`` (batches of one host) with that host's ``key``."""
    body = codec.encode(request, encoding="gzip")
    samples = sum(len(s.values) for b in request.batches for s in b.snapshots)
    await post_body(httpx_sender(client), body, samples, stats, key, retries=retries)


async def post_body(
    send: Send,
    body: bytes,
    samples: int,
    stats: PushStats,
    key: str,
    *,
    retries: int = 3,
) -> None:
    """POST a gzipped serialised ``IngestRequest`` of ``samples`` samples with ``key``."""
    headers = {
        "content-type": PROTOBUF_CONTENT_TYPE,
        "content-encoding": "gzip",
        "authorization": f"Bearer {key}",
    }
    for attempt in range(retries + 1):
        try:
            resp = await send(body, headers)
        except WireError as exc:
            logger.warning("push failed", extra={"error": str(exc), "attempt": attempt})
        else:
            if resp.status < 300:
                stats.requests += 1
                stats.samples += samples
                return
            logger.warning("server refused a batch: %s %s", resp.status, resp.text[:300])
            after = resp.headers.get("retry-after")
            if resp.status == 429 and after is not None and after.isdigit():
                await asyncio.sleep(min(60.0, float(after)))
                continue
            if resp.status < 500:
                break
        await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
    stats.failures += 1


async def backfill(
    client: httpx.AsyncClient,
    hosts: list[SimHost],
    start_ms: int,
    end_ms: int,
    interval: float,
    *,
    keys: Keys,
    chunk: int = 60,
    concurrency: int = 4,
) -> PushStats:
    """Every host's snapshots from ``start_ms`` up to ``end_ms``, oldest first, ``chunk``
    snapshots of one host per request."""
    stats = PushStats()
    step = int(interval * 1000)
    sem = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()

    async def send(req: IngestRequest, key: str) -> None:
        async with sem:
            await post(client, req, stats, key)

    t = start_ms
    seq = 0
    while t < end_ms:
        ts = np.arange(t, min(end_ms, t + chunk * step), step, dtype=np.int64)
        for h in hosts:
            req = IngestRequest(batches=[host_batch(h, ts, interval, sequence_start=seq)])
            while len(pending) >= concurrency * 2:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending.add(asyncio.create_task(send(req, keys[h.host_id])))
        t += chunk * step
        seq += len(ts)
    if pending:
        await asyncio.wait(pending)
    return stats


async def run_live(
    client: httpx.AsyncClient,
    hosts: list[SimHost],
    interval: float,
    duration: float | None,
    *,
    keys: Keys,
    concurrency: int = 16,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
) -> PushStats:
    """One snapshot per host every ``interval`` seconds until ``duration`` or ``stop`` (one
    request per host, with its key; at most ``concurrency`` in flight, on as many keep-alive
    connections to ``client``'s base URL: see ``hostpulse.sim.wire``)."""
    pool = Pool(str(client.base_url), concurrency)
    try:
        return await _live(pool, hosts, interval, duration, keys, clock, stop)
    finally:
        await pool.aclose()


async def _live(
    pool: Pool,
    hosts: list[SimHost],
    interval: float,
    duration: float | None,
    keys: Keys,
    clock: Callable[[], float],
    stop: asyncio.Event | None,
) -> PushStats:
    sender = pool_sender(pool)
    stats = PushStats()
    stop = stop or asyncio.Event()
    started = clock()
    tick = 0
    encoders = [LiveEncoder(h, interval) for h in hosts]
    while not stop.is_set() and (duration is None or clock() - started < duration):
        now_ms = int(clock() * 1000)

        async def push_one(enc: LiveEncoder, now_ms: int = now_ms, tick: int = tick) -> None:
            raw, samples = enc.request(now_ms, tick)
            body = gzip.compress(raw, compresslevel=1)  # as codec.encode(..., "gzip")
            await post_body(sender, body, samples, stats, keys[enc.host.host_id])

        await asyncio.gather(*(push_one(e) for e in encoders))
        tick += 1
        next_at = started + tick * interval
        delay = max(0.0, next_at - clock())
        if duration is not None:
            delay = min(delay, max(0.0, started + duration - clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
    return stats
