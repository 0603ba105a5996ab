"""Server replicas sharing PostgreSQL and Redis (``redis_url``), as real `hostpulse server`
processes on loopback ports: live samples cross replicas, users and the login throttle and
rate limits are shared, a revocation on one replica holds on another at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from replicas import Cluster, ingest, redis_db, start_cluster  # noqa: F401 (fixtures)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol
from wire import batch, now_ms, request

from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.testing import login

DEADLINE_S = 20.0
StartCluster = Callable[..., Cluster]


def cpu_sample(host: str, cpu: float, ts: int | None = None) -> bytes:
    values = {("cpu_busy_percent", ()): cpu, ("memory_usage_percent", ()): 30.0}
    return request(batch(host, [(ts or now_ms(), values)], interval=1.0)).SerializeToString()


def ws_connect(url: str, token: str, query: str) -> connect:
    protocols = [Subprotocol("hostpulse"), Subprotocol("bearer." + token)]
    ws_url = url.replace("http://", "ws://") + "/api/v1/ws?" + query
    return connect(ws_url, proxy=None, compression=None, subprotocols=protocols)


def test_a_websocket_on_one_replica_sees_samples_ingested_through_another(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster(2)
    a, b = cluster.replicas
    key = cluster.agent_key("web-1", 1)
    token = login(a.url, "admin", cluster_password())["access_token"]

    async def run() -> None:
        async with ws_connect(a.url, token, "hosts=web-1&fleet=true") as ws:
            first = LiveFrame.FromString(await ws.recv(decode=False))
            assert first.subscribed.hosts == ["web-1"]
            ts = now_ms()
            r = await asyncio.to_thread(ingest, b.url, key, cpu_sample("web-1", 42.5, ts))
            assert r.status_code == 200, r.text
            got_samples = got_fleet = False
            async with asyncio.timeout(DEADLINE_S):
                while not (got_samples and got_fleet):
                    frame = LiveFrame.FromString(await ws.recv(decode=False))
                    if frame.HasField("samples"):
                        assert frame.samples.host.host_id == "web-1"
                        assert frame.samples.snapshots[0].timestamp_ms == ts
                        got_samples = True
                    elif frame.HasField("fleet"):
                        (card,) = frame.fleet.hosts
                        assert (card.host_id, card.cpu_percent) == ("web-1", 42.5)
                        got_fleet = True

    asyncio.run(run())


def cluster_password() -> str:
    from replicas import PASSWORD

    return PASSWORD


def test_users_logins_and_limits_are_shared_by_the_replicas(start_cluster: StartCluster) -> None:
    cluster = start_cluster(2, HOSTPULSE_AGENT_RATE_LIMIT="6")
    a, b = cluster.replicas
    r = httpx.post(
        f"{a.url}/api/v1/users",
        json={"username": "carol", "password": "carol-password-1", "role": "viewer"},
        headers=cluster.admin(0),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    # created through replica 1, signs in through replica 2; the token works on both
    token = login(b.url, "carol", "carol-password-1")["access_token"]
    for replica in (a, b):
        me = httpx.get(
            f"{replica.url}/api/v1/auth/me",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert me.status_code == 200, me.text

    # the agent rate limit (6 per window) counts the requests of both replicas together
    key = cluster.agent_key("rate-1", 0)
    codes = [
        ingest(cluster.replicas[i % 2].url, key, cpu_sample("rate-1", 1.0)).status_code
        for i in range(7)
    ]
    assert codes == [200] * 6 + [429]

    # 10 failed logins spread over the replicas; the 11th is refused on either
    for i in range(10):
        r = httpx.post(
            f"{cluster.replicas[i % 2].url}/api/v1/auth/login",
            json={"username": "carol", "password": "wrong-password-x"},
            timeout=30,
        )
        assert r.status_code == 401, (i, r.text)
    for replica in (a, b):
        r = httpx.post(
            f"{replica.url}/api/v1/auth/login",
            json={"username": "carol", "password": "carol-password-1"},
            timeout=30,
        )
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1


def test_revocations_on_one_replica_hold_on_another_at_once(start_cluster: StartCluster) -> None:
    cluster = start_cluster(2)
    a, b = cluster.replicas
    key = cluster.agent_key("web-2", 0)
    assert ingest(b.url, key, cpu_sample("web-2", 5.0)).status_code == 200  # b caches the key
    keys = httpx.get(f"{a.url}/api/v1/agent-keys", headers=cluster.admin(0), timeout=30).json()
    (key_id,) = [k["id"] for k in keys if k["host_id"] == "web-2"]
    r = httpx.post(
        f"{a.url}/api/v1/agent-keys/{key_id}/revoke", headers=cluster.admin(0), timeout=30
    )
    assert r.status_code == 204
    assert refused_within(1.0, lambda: ingest(b.url, key, cpu_sample("web-2", 5.0)).status_code)

    # a user deleted through one replica: their live socket on the other is closed at once
    # (not at the next live_auth_recheck, 30 s by default)
    r = httpx.post(
        f"{a.url}/api/v1/users",
        json={"username": "dave", "password": "dave-password-12", "role": "viewer"},
        headers=cluster.admin(0),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    token = login(a.url, "dave", "dave-password-12")["access_token"]

    async def run() -> float:
        async with ws_connect(a.url, token, "fleet=true") as ws:
            await ws.recv(decode=False)  # subscribed
            r = await asyncio.to_thread(
                httpx.delete, f"{b.url}/api/v1/users/dave", headers=cluster.admin(1), timeout=30
            )
            assert r.status_code == 204, r.text
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(DEADLINE_S):
                    while True:
                        await ws.recv(decode=False)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
            return time.monotonic() - started

    assert asyncio.run(run()) < 10.0  # the recheck interval is 30 s


def refused_within(seconds: float, status: Callable[[], int]) -> bool:
    """Whether ``status()`` answers 401 within ``seconds`` (tried every 50 ms)."""
    deadline = time.monotonic() + seconds
    while True:
        code = status()
        if code == 401:
            return True
        assert code == 200, code
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
