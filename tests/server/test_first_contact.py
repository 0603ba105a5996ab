"""Issue 13 item 2: after a server restart every agent comes back at once. First contact of
1,000 hosts (each enrolled first, each with its own agent key) over 16 concurrent connections
to a real uvicorn server: every request is acknowledged, none is a 5xx ("database is locked"
came from a second pool on the SQLite file opening connections while the store wrote)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.testing import Clock, LiveServer
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

HOSTS = 1000
CONNECTIONS = 16


def _bodies(hosts: list[SimHost]) -> dict[str, bytes]:
    """Each simulated host's first request (~150 series, its process list): what an agent
    sends at first contact."""
    ts = np.array([int(time.time() * 1000) - 5000], dtype=np.int64)
    return {h.host_id: codec.encode(IngestRequest(batches=[host_batch(h, ts, 5.0)])) for h in hosts}


async def _first_contact(url: str, keys: dict[str, str], bodies: dict[str, bytes]) -> Counter[int]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for host_id in keys:
        queue.put_nowait(host_id)
    statuses: Counter[int] = Counter()

    async def connection() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            while not queue.empty():
                host_id = queue.get_nowait()
                r = await client.post(
                    "/api/v1/ingest",
                    content=bodies[host_id],
                    headers={
                        "Content-Type": "application/x-protobuf",
                        "Content-Encoding": "gzip",
                        "Authorization": f"Bearer {keys[host_id]}",
                    },
                )
                statuses[r.status_code] += 1

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return statuses


@pytest.mark.slow
def test_first_contact_of_1000_hosts_over_16_connections_has_no_5xx(tmp_path: Path) -> None:
    hosts = [SimHost(make_profile(i)) for i in range(HOSTS)]
    bodies = _bodies(hosts)
    with LiveServer(tmp_path / "data", Clock(), max_series_per_host=5000) as srv:
        token = srv.enrollment_token(single_use=False)
        keys = {h.host_id: "" for h in hosts}
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for host_id in keys:
                r = client.post("/api/v1/agent/enroll", json={"token": token, "host_id": host_id})
                assert r.status_code == 201, r.text
                keys[host_id] = r.json()["key"]
        statuses = asyncio.run(_first_contact(srv.url, keys, bodies))
        assert statuses == Counter({200: HOSTS}), statuses
        assert len(srv.call(srv.store.hosts())) == HOSTS
