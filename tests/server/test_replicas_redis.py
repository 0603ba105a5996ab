"""Server replicas sharing PostgreSQL and Redis (``redis_url``), as real `hostpulse server`
processes on loopback ports: live samples cross replicas, users and the login throttle and
rate limits are shared, a revocation on one replica holds on another at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from cli_process import run_cli
from pgdb import empty_pg
from replicas import PASSWORD, Cluster, Replica, ingest, start_replica
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol
from wire import batch, now_ms, request

from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.cluster.ownership import rendezvous
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
    token = login(a.url, "admin", PASSWORD)["access_token"]

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
    metrics = httpx.get(f"{b.url}/metrics", headers=cluster.admin(1), timeout=30).text
    assert "hostpulse_cluster_replicas 2.0" in metrics
    published = [
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("hostpulse_cluster_published_messages_total ")
    ]
    assert published and published[0] >= 1


def received_batches(cluster: Cluster, i: int) -> float:
    metrics = httpx.get(f"{cluster.replicas[i].url}/metrics", headers=cluster.admin(i), timeout=30)
    for line in metrics.text.splitlines():
        if line.startswith("hostpulse_cluster_received_batches_total "):
            return float(line.split()[1])
    raise AssertionError("no hostpulse_cluster_received_batches_total")


def test_alert_events_reach_a_websocket_on_a_replica_that_does_not_own_the_host(
    start_cluster: StartCluster, tmp_path: Path
) -> None:
    """Alert events go over Redis too: a browser sees an alert whichever replica it reached; and
    a replica decodes no batch that neither its clients watch nor its alert engine evaluates."""
    config = tmp_path / "alerts.yml"
    config.write_text(
        "create_default_rules: false\nevaluation_interval: 0.2s\nrules:\n"
        "  - {id: cpu-hot, metric: cpu_busy_percent, op: '>', warning: 90}\n"
    )
    cluster = start_cluster(2, HOSTPULSE_ALERTS_CONFIG=str(config))
    a, b = cluster.replicas
    deadline = time.monotonic() + DEADLINE_S
    while len(cluster.redis.zrange("hostpulse:members", 0, -1)) < 2:
        assert time.monotonic() < deadline, "the replicas did not both join"
        time.sleep(0.1)
    time.sleep(2.5)  # both have read the member list (a heartbeat is 1 s)
    members = sorted(m.decode() for m in cluster.redis.zrange("hostpulse:members", 0, -1))
    host = next(f"hot-{i}" for i in range(1000) if rendezvous(members, f"hot-{i}") == b.id)
    key = cluster.agent_key(host, 1)
    token = login(a.url, "admin", PASSWORD)["access_token"]

    async def run() -> None:
        async with ws_connect(a.url, token, "alerts=true") as ws:
            assert LiveFrame.FromString(await ws.recv(decode=False)).subscribed.alerts
            r = await asyncio.to_thread(ingest, b.url, key, cpu_sample(host, 97.0))
            assert r.status_code == 200, r.text
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    frame = LiveFrame.FromString(await ws.recv(decode=False))
                    if frame.HasField("alerts") and any(
                        x.host == host and x.state == "firing" for x in frame.alerts.alerts
                    ):
                        return

    asyncio.run(run())
    assert received_batches(cluster, 0) == 0  # a: no client watches the host, b owns it


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


def test_revocations_on_one_replica_hold_on_another_at_once(
    start_cluster: StartCluster, tmp_path: Path
) -> None:
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

    # revoked with the command line (HOSTPULSE_REDIS_URL set as for the servers): the same
    key3 = cluster.agent_key("web-3", 0)
    assert ingest(b.url, key3, cpu_sample("web-3", 5.0)).status_code == 200
    keys = httpx.get(f"{a.url}/api/v1/agent-keys", headers=cluster.admin(0), timeout=30).json()
    (key3_id,) = [k["id"] for k in keys if k["host_id"] == "web-3"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env["HOSTPULSE_REDIS_URL"] = cluster.redis_url
    done = run_cli(
        ["key", "revoke", str(key3_id), "--database-url", cluster.database_url,
         "--data-dir", str(tmp_path / "cli")],
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert refused_within(1.0, lambda: ingest(b.url, key3, cpu_sample("web-3", 5.0)).status_code)

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


def test_a_server_whose_redis_cannot_be_reached_exits_2_naming_the_key(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    result = run_cli(
        [
            "server",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
            "--redis-url",
            f"redis://:hunter2@127.0.0.1:{port}/0",
        ],
        env={**env, "HOSTPULSE_ADMIN_PASSWORD": PASSWORD},
    )
    assert result.returncode == 2
    assert "HOSTPULSE_REDIS_URL (redis_url): cannot use Redis at" in result.stderr
    assert f"redis://:***@127.0.0.1:{port}/0" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout

    bad = run_cli(["server", "--redis-url", "http://127.0.0.1:6379"], env=env)
    assert bad.returncode == 2 and "is not a Redis URL" in bad.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def own_redis(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of this test's own on ``port`` (no persistence), stopped by its PID."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_replicas_keep_serving_while_redis_is_down_and_share_again_when_it_is_back(
    tmp_path: Path, pg_database: str
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    replicas: list[Replica] = []
    try:
        with own_redis(port, tmp_path / "redis-1"):
            database_url = empty_pg(pg_database)
            for i in range(2):
                replicas.append(start_replica(tmp_path / f"r{i}", database_url, url, {}))
            a, b = replicas
            cluster = Cluster(replicas, redis.Redis(host="127.0.0.1", port=port))
            key = cluster.agent_key("web-9", 1)
            token = login(a.url, "admin", PASSWORD)["access_token"]
        # Redis is gone: ingest, sign-in and queries go on, each replica on its own
        assert ingest(b.url, key, cpu_sample("web-9", 12.0)).status_code == 200
        assert login(a.url, "admin", PASSWORD)["access_token"]
        hosts = httpx.get(
            f"{b.url}/api/v1/hosts", headers={"authorization": f"Bearer {token}"}, timeout=30
        )
        assert hosts.status_code == 200  # a's token: the shared secret is kept in memory
        with own_redis(port, tmp_path / "redis-2"):  # back, empty
            client = redis.Redis(host="127.0.0.1", port=port)
            deadline = time.monotonic() + 30
            while (
                len(client.zrange("hostpulse:members", 0, -1)) < 2
                or client.pubsub_numsub("hostpulse:0:events")[0][1] < 2
                or not client.exists("hostpulse:auth:signing-secret")
            ):
                assert time.monotonic() < deadline, "the replicas did not come back to Redis"
                time.sleep(0.1)
            client.close()

            async def run() -> None:
                async with ws_connect(a.url, token, "hosts=web-9") as ws:
                    await ws.recv(decode=False)  # subscribed
                    ts = now_ms()
                    r = await asyncio.to_thread(ingest, b.url, key, cpu_sample("web-9", 33.0, ts))
                    assert r.status_code == 200, r.text
                    async with asyncio.timeout(DEADLINE_S):
                        while True:
                            frame = LiveFrame.FromString(await ws.recv(decode=False))
                            if frame.HasField("samples"):
                                assert frame.samples.snapshots[0].timestamp_ms == ts
                                return

            asyncio.run(run())
    finally:
        for replica in replicas:
            replica.stop()
