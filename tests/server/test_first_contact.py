"""Issue 13 item 2: after a server restart every agent comes back at once. First contact of
1,000 hosts (each enrolled first, each with its own agent key) over 16 concurrent connections
to a real uvicorn server: every request is acknowledged, none is a 5xx ("database is locked"
came from a second pool on the SQLite file opening connections while the store wrote)."""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from pathlib import Path

import httpx
import pytest
from wire import batch, now_ms, request

from hostpulse.server.testing import Clock, LiveServer

HOSTS = 1000
CONNECTIONS = 16
SERIES = [(("cpu_busy_percent", ()), 12.5)] + [
    (("filesystem_usage_percent", (("device", f"/dev/sd{d}1"), ("mountpoint", f"/m{d}"))), 40.0)
    for d in "abcdefgh"
]


def _body(host_id: str, ts: int) -> bytes:
    values = {key: v for key, v in SERIES}
    return gzip.compress(request(batch(host_id, [(ts, values)])).SerializeToString())


async def _first_contact(url: str, keys: dict[str, str]) -> Counter[int]:
    ts = now_ms()
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
                    content=_body(host_id, ts),
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
    with LiveServer(tmp_path / "data", Clock()) as srv:
        token = srv.enrollment_token(single_use=False)
        keys = {f"fleet-{i:04d}": "" for i in range(HOSTS)}
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for host_id in keys:
                r = client.post("/api/v1/agent/enroll", json={"token": token, "host_id": host_id})
                assert r.status_code == 201, r.text
                keys[host_id] = r.json()["key"]
        statuses = asyncio.run(_first_contact(srv.url, keys))
        assert statuses == Counter({200: HOSTS}), statuses
        assert len(srv.call(srv.store.hosts())) == HOSTS
