"""Push simulated hosts to a server: live (one snapshot per host per interval) or back-filled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, IngestRequest, codec
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

logger = logging.getLogger(__name__)
INGEST_PATH = "/api/v1/ingest"


@dataclass(slots=True)
class PushStats:
    requests: int = 0
    samples: int = 0
    failures: int = 0


def make_hosts(count: int, seed: int = 0) -> list[SimHost]:
    return [SimHost(make_profile(i, seed), seed) for i in range(count)]


async def post(
    client: httpx.AsyncClient, request: IngestRequest, stats: PushStats, *, retries: int = 3
) -> None:
    body = codec.encode(request, encoding="gzip")
    samples = sum(len(s.values) for b in request.batches for s in b.snapshots)
    headers = {"content-type": PROTOBUF_CONTENT_TYPE, "content-encoding": "gzip"}
    for attempt in range(retries + 1):
        try:
            resp = await client.post(INGEST_PATH, content=body, headers=headers)
        except httpx.TransportError as exc:
            logger.warning("push failed", extra={"error": repr(exc), "attempt": attempt})
        else:
            if resp.status_code < 300:
                stats.requests += 1
                stats.samples += samples
                return
            logger.warning("server refused a batch: %s %s", resp.status_code, resp.text[:300])
            if resp.status_code < 500:
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
    chunk: int = 60,
    concurrency: int = 4,
) -> PushStats:
    """Every host's snapshots from ``start_ms`` up to ``end_ms``, oldest first, ``chunk``
    snapshots of one host per request."""
    stats = PushStats()
    step = int(interval * 1000)
    sem = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()

    async def send(req: IngestRequest) -> None:
        async with sem:
            await post(client, req, stats)

    t = start_ms
    seq = 0
    while t < end_ms:
        ts = np.arange(t, min(end_ms, t + chunk * step), step, dtype=np.int64)
        for h in hosts:
            req = IngestRequest(batches=[host_batch(h, ts, interval, sequence_start=seq)])
            while len(pending) >= concurrency * 2:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending.add(asyncio.create_task(send(req)))
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
    hosts_per_request: int = 20,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
) -> PushStats:
    """One snapshot per host every ``interval`` seconds until ``duration`` or ``stop``."""
    stats = PushStats()
    stop = stop or asyncio.Event()
    started = clock()
    tick = 0
    while not stop.is_set() and (duration is None or clock() - started < duration):
        now_ms = int(clock() * 1000)
        ts = np.array([now_ms], dtype=np.int64)
        groups = [hosts[i : i + hosts_per_request] for i in range(0, len(hosts), hosts_per_request)]
        await asyncio.gather(
            *(
                post(
                    client,
                    IngestRequest(
                        batches=[host_batch(h, ts, interval, sequence_start=tick) for h in g]
                    ),
                    stats,
                )
                for g in groups
            )
        )
        tick += 1
        next_at = started + tick * interval
        delay = max(0.0, next_at - clock())
        if duration is not None:
            delay = min(delay, max(0.0, started + duration - clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
    return stats
