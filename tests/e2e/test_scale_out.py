"""The whole scaled-out system (issue 12's acceptance): three ``hostpulse server`` replicas on one
PostgreSQL database, one Redis database number and a real VictoriaMetrics, behind Debian's
HAProxy with the shipped config; 100 simulated hosts and one real ``hostpulse agent`` ship
through HAProxy while one replica is SIGKILLed and started again.

Asserted, as a user relies on it:
- every sample acknowledged to an agent is in VictoriaMetrics, each series with exactly the
  timestamps sent; the senders' backlogs (the simulated hosts' resends, the real agent's spool)
  are empty within 30 s of the kill;
- a dashboard WebSocket on each replica (and one through HAProxy) receives every host's
  samples, whichever replica ingested them;
- a rule breached on a host gives exactly one notification at the webhook, for two hosts whose
  alerts the killed replica evaluated (chosen by the replicas' own rendezvous hashing over
  their Redis member ids): one whose alert fired before the kill (not announced again by the
  new owner) and one breached after it (announced once, by the new owner);
- a user created through replica 1 signs in through replica 2; 11 failed logins spread over
  the replicas: the 11th is answered 429;
- HAProxy takes the killed replica out (its /api/v1/ready stops answering) and back in.

Cost: about a minute of pushing (plus start-up) on 2 cores; a longer run is
``bench/scale_out.py``."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from pgdb import empty_pg
from replicas import flush
from scalekit import (
    HOSTPULSE,
    HAProxy,
    Proc,
    Replica,
    VictoriaMetrics,
    Webhook,
    clean_env,
    free_port,
    wait_until,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from hostpulse.protocol import (
    PROTOBUF_CONTENT_TYPE,
    Host,
    HostBatch,
    IngestRequest,
    Label,
    SeriesDef,
    codec,
)
from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.cluster.ownership import MEMBERS, rendezvous
from hostpulse.server.testing import enrollment_token, login
from hostpulse.sim.build import host_batch
from hostpulse.sim.push import enroll_hosts, make_hosts
from hostpulse.store.tsdb.remote_write import HOST_LABEL

pytestmark = pytest.mark.slow

SIM_HOSTS = 100
INTERVAL_S = 10.0  # 10 ingest requests/s: what a loaded 2-core machine keeps up with
RUN_S = 60.0
KILL_AT_S = 20.0
DOWN_S = 5.0
DRAIN_S = 30.0
BREACH_RULE = "scale-out-cpu"
ADMIN_PASSWORD = "scale-" + secrets.token_hex(12)
ALERTS_YML = """
create_default_rules: false
allow_networks: ['127.0.0.1/32']
evaluation_interval: 1s
dedup_window: 10m
repeat_interval: 0
channels:
  - id: hook
    type: webhook
    url: {hook}
rules:
  - id: {rule}
    name: CPU saturated
    metric: cpu_busy_percent
    op: ">"
    critical: 90
    hosts: {{labels: {{breach: "yes"}}}}
    channels: [hook]
"""


@dataclass
class Acks:
    """What the senders were told: per host, the timestamps of acknowledged snapshots and when
    each acknowledgement came; the resends."""

    stamps: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    acked_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    series: dict[str, int] = field(default_factory=dict)
    retried_done: list[float] = field(default_factory=list)
    """When each request that needed a resend was finally acknowledged."""
    abandoned: list[str] = field(default_factory=list)


@pytest.fixture
def redis_url(redis_db: int) -> str:
    """This session's own Redis database (``redis_db`` of tests/replicas.py claims it with a
    lock key), emptied for this test."""
    flush(redis_db).close()
    return f"redis://127.0.0.1:6379/{redis_db}"


def breach_batch(host_id: str, ts_ms: int, cpu: float) -> HostBatch:
    batch = HostBatch(
        host=Host(
            host_id=host_id,
            hostname=f"{host_id}.test",
            interval_seconds=INTERVAL_S,
            labels=[Label(name="breach", value="yes")],
        ),
        series=[SeriesDef(metric="cpu_busy_percent")],
    )
    snap = batch.snapshots.add(timestamp_ms=ts_ms, sequence=ts_ms // 1000)
    snap.series_index.append(0)
    snap.values.append(cpu)
    return batch


async def send_until_acked(
    client: httpx.AsyncClient,
    batch: HostBatch,
    key: str,
    acks: Acks,
    give_up: float,
    delay: float = 0.0,
) -> None:
    """After ``delay`` seconds, POST ``batch`` as an agent does: resend the same snapshot until
    it is acknowledged (every 0.5 s, until ``give_up`` on the monotonic clock)."""
    await asyncio.sleep(delay)
    body = codec.encode(IngestRequest(batches=[batch]), encoding="gzip")
    headers = {
        "content-type": PROTOBUF_CONTENT_TYPE,
        "content-encoding": "gzip",
        "authorization": f"Bearer {key}",
    }
    host = batch.host.host_id
    for attempt in range(10_000):
        try:
            r = await client.post("/api/v1/ingest", content=body, headers=headers)
            ok = r.status_code < 300
            assert r.status_code < 400 or r.status_code == 429, r.text
        except httpx.TransportError:
            ok = False
        if ok:
            acks.stamps[host].extend(s.timestamp_ms for s in batch.snapshots)
            acks.acked_at[host].append(time.time())
            if attempt:
                acks.retried_done.append(time.monotonic())
            return
        if time.monotonic() > give_up:
            acks.abandoned.append(host)
            return
        await asyncio.sleep(0.5)


@dataclass
class LiveWatch:
    """A dashboard's WebSocket on one replica, subscribed to every host; reconnects after the
    replica comes back. Per host, every snapshot timestamp it received; the spans during which
    it was subscribed."""

    name: str
    url: str
    """``ws://`` URL of the live endpoint (a replica's, or HAProxy's: the WebSocket tunnel)."""
    token: str
    hosts: list[str]
    seen: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    spans: list[list[float]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    """Why each connection ended (shown when the test fails)."""

    async def run(self, stop: asyncio.Event) -> None:
        url = f"{self.url}/api/v1/ws?format=protobuf"
        headers = {"authorization": f"Bearer {self.token}"}
        while not stop.is_set():
            try:
                # no keep-alive pings: the server's heartbeats show the connection is alive, and
                # a loaded test process may answer a ping late (the client would close 1011)
                async with connect(
                    url, additional_headers=headers, proxy=None, ping_interval=None
                ) as ws:
                    await ws.send(json.dumps({"hosts": self.hosts, "fleet": False}))
                    span: list[float] | None = None
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
                        except TimeoutError:
                            continue
                        frame = LiveFrame.FromString(raw if isinstance(raw, bytes) else b"")
                        kind = frame.WhichOneof("kind")
                        if kind == "subscribed" and len(frame.subscribed.hosts) == len(self.hosts):
                            span = [time.time(), time.time()]
                            self.spans.append(span)
                        elif kind == "samples":
                            host = frame.samples.host.host_id
                            self.seen[host].update(s.timestamp_ms for s in frame.samples.snapshots)
                        if span is not None:
                            span[1] = time.time()
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                self.ended.append(f"{time.time():.1f} {exc!r}")
                await asyncio.sleep(0.5)

    def missed(self, acks: Acks, margin: float = 2.0) -> dict[str, list[float]]:
        """Per host, when the acknowledged snapshots it did not receive were acknowledged,
        although it was subscribed from ``margin`` seconds before to ``margin`` seconds after."""
        out: dict[str, list[float]] = {}
        for host, stamps in acks.stamps.items():
            missing = [
                at
                for ts, at in zip(stamps, acks.acked_at[host], strict=True)
                if any(a + margin <= at <= b - margin for a, b in self.spans)
                and ts not in self.seen[host]
            ]
            if missing:
                out[host] = missing
        return out


def join(replica: Replica, redis_url: str) -> str:
    """Start ``replica`` and wait until it is a member of the cluster: its member id."""
    client = redis.Redis.from_url(redis_url)
    try:
        before = set(client.zrange(MEMBERS, 0, -1))
        replica.start()
        new: set[bytes] = set()

        def joined() -> bool:
            new.update(set(client.zrange(MEMBERS, 0, -1)) - before)
            return bool(new)

        wait_until(joined, 30, f"{replica.name} to join the cluster")
        assert len(new) == 1, new
        return new.pop().decode()
    finally:
        client.close()


def owned_hosts(members: list[str], owner: str, count: int) -> tuple[str, ...]:
    """``count`` host ids whose alerts ``owner`` evaluates while ``members`` are up (the
    replicas' own rendezvous hashing)."""
    found = [f"breach-{i}" for i in range(10_000) if rendezvous(members, f"breach-{i}") == owner]
    return tuple(found[:count])


def check_users_across_replicas(replicas: list[Replica]) -> None:
    """A user created through replica 1 signs in through replica 2 (and its token is good on
    replica 3)."""
    first, second, third = (r.url for r in replicas)
    admin = login(first, "admin", ADMIN_PASSWORD)["access_token"]
    password = "viewer-" + secrets.token_hex(10)
    r = httpx.post(
        f"{first}/api/v1/users",
        json={"username": "ops", "password": password, "role": "viewer"},
        headers={"authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    token = login(second, "ops", password)["access_token"]
    me = httpx.get(
        f"{third}/api/v1/hosts", headers={"authorization": f"Bearer {token}"}, timeout=30
    )
    assert me.status_code == 200, me.text


def check_failed_logins_across_replicas(replicas: list[Replica]) -> None:
    """11 failed logins spread over the replicas: the 11th is answered 429 (checked last: the
    throttle also counts the client's address, and every request here comes from 127.0.0.1)."""
    answers = []
    for i in range(11):
        url = replicas[i % 3].url
        wrong = {"username": "ops", "password": f"wrong-password-{i:02d}"}
        answers.append(httpx.post(f"{url}/api/v1/auth/login", json=wrong, timeout=30).status_code)
    assert answers == [401] * 10 + [429], answers


@dataclass
class Observed:
    acks: Acks
    watches: list[LiveWatch]
    killed_at: float
    agent_pending: list[tuple[float, float]]
    """(monotonic time, the real agent's spooled snapshots) once a second."""


def export_by_host(vm: VictoriaMetrics, host_label: str) -> dict[str, list[list[int]]]:
    """Per host, the timestamps of each of its series in VictoriaMetrics."""
    out: dict[str, list[list[int]]] = defaultdict(list)
    for row in vm.export(f'{{{host_label}!=""}}'):
        out[row["metric"][host_label]].append(sorted(row["timestamps"]))
    return out


async def scenario(
    tmp_path: Path,
    replicas: list[Replica],
    lb: HAProxy,
    hook: Webhook,
    agent_port: int,
    breach_hosts: tuple[str, ...],
) -> Observed:
    """Run the pushing, the kill and the restart; return what was observed."""
    hosts = make_hosts(SIM_HOSTS, seed=12)
    all_ids = [h.host_id for h in hosts] + list(breach_hosts) + ["real-agent"]
    acks = Acks(series={h.host_id: len(h.series) for h in hosts})
    async with httpx.AsyncClient(base_url=lb.url, timeout=30) as client:
        admin = login(lb.url, "admin", ADMIN_PASSWORD)["access_token"]
        fleet = enrollment_token(lb.url, admin, single_use=False)
        keys = await enroll_hosts(client, hosts, fleet)
        for host_id in breach_hosts:
            r = await client.post("/api/v1/agent/enroll", json={"token": fleet, "host_id": host_id})
            assert r.status_code == 201, r.text
            keys[host_id] = r.json()["key"]
        agent_token = enrollment_token(lb.url, admin, "real-agent")
        agent = Proc(
            [
                HOSTPULSE,
                "agent",
                "--server",
                lb.url,
                "--interval",
                "1",
                "--host-id",
                "real-agent",
                "--spool-dir",
                str(tmp_path / "agent-spool"),
                "--listen",
                f"127.0.0.1:{agent_port}",
                "--log-level",
                "info",
            ],
            tmp_path / "agent.log",
            clean_env(
                HOSTPULSE_ENROLL_TOKEN=agent_token,
                HOSTPULSE_SHIPPER__BACKOFF_MAX="2",
                HOSTPULSE_SHIPPER__TIMEOUT="5",
                HOSTPULSE_SHIPPER__FLUSH_TIMEOUT="15",
            ),
        )
        stop = asyncio.Event()
        watches = [LiveWatch(r.name, f"ws://127.0.0.1:{r.port}", admin, all_ids) for r in replicas]
        watches.append(LiveWatch("haproxy", f"ws://127.0.0.1:{lb.port}", admin, all_ids))
        watch_tasks = [asyncio.create_task(w.run(stop)) for w in watches]
        wait_until_subscribed = time.monotonic() + 60
        while not all(w.spans for w in watches):
            assert time.monotonic() < wait_until_subscribed, "a live WebSocket never subscribed"
            await asyncio.sleep(0.2)

        victim = replicas[1]
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        tick = 0
        killed_at: float | None = None
        restarted = False
        agent_pending: list[tuple[float, float]] = []

        async def watch_spool() -> None:
            while not stop.is_set():
                agent_pending.append((time.monotonic(), await agent_spool(agent_port)))
                await asyncio.sleep(1.0)

        spool_task = asyncio.create_task(watch_spool())
        while time.monotonic() - started < RUN_S:
            elapsed = time.monotonic() - started
            now_ms = int(time.time() * 1000) // 1000 * 1000
            ts = np.array([now_ms], dtype=np.int64)
            give_up = time.monotonic() + 2 * DRAIN_S
            spread = 0.8 * INTERVAL_S / len(hosts)  # agents are not in step with each other
            for n, h in enumerate(hosts):
                batch = host_batch(h, ts, INTERVAL_S, sequence_start=tick)
                coro = send_until_acked(client, batch, keys[h.host_id], acks, give_up, n * spread)
                pending.add(asyncio.create_task(coro))
            for i, host_id in enumerate(breach_hosts):
                breached = elapsed > (KILL_AT_S / 2 if i == 0 else KILL_AT_S + 2)
                batch = breach_batch(host_id, now_ms, 99.0 if breached else 5.0)
                coro = send_until_acked(client, batch, keys[host_id], acks, give_up)
                pending.add(asyncio.create_task(coro))
            pending = {t for t in pending if not t.done()}
            if killed_at is None and elapsed >= KILL_AT_S:
                victim.kill()
                killed_at = time.monotonic()
            if killed_at is not None and not restarted and time.monotonic() - killed_at > DOWN_S:
                victim.start(wait=False)
                restarted = True
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * INTERVAL_S - time.monotonic()))
        if pending:
            await asyncio.wait(pending, timeout=2 * DRAIN_S + 30)
        victim.wait_ready()
        await asyncio.sleep(3)  # the last fan-out frames
        stop.set()
        await asyncio.gather(*watch_tasks, spool_task)
        assert agent.stop(60) == 0, agent.tail()
        assert killed_at is not None
        return Observed(acks, watches, killed_at, agent_pending)


async def agent_spool(port: int) -> float:
    """The real agent's spooled (not yet acknowledged) snapshots, from its /metrics."""
    try:
        async with httpx.AsyncClient(timeout=5) as c:
            text = (await c.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith("hostpulse_agent_spool_snapshots") or line.startswith(
            "node_agent_spool_snapshots"
        ):
            return float(line.split()[-1])
    return float("nan")


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path / "vm-data", tmp_path / "vm.log") as proc:
        yield proc


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    try:
        yield receiver
    finally:
        receiver.close()


def test_scaled_out_system_survives_a_replica_kill(
    tmp_path: Path, pg_database: str, redis_url: str, vm: VictoriaMetrics, hook: Webhook
) -> None:
    database_url = empty_pg(pg_database)
    alerts = tmp_path / "alerts.yml"
    alerts.write_text(ALERTS_YML.format(hook=hook.url, rule=BREACH_RULE))
    env = {
        "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HOSTPULSE_DATABASE_URL": database_url,
        "HOSTPULSE_REDIS_URL": redis_url,
        "HOSTPULSE_TSDB_URL": vm.url,
        "HOSTPULSE_ALERTS_CONFIG": str(alerts),
        "HOSTPULSE_TRUSTED_PROXIES": "127.0.0.1",
        "HOSTPULSE_AGENT_RATE_LIMIT": "1000000",
        "HOSTPULSE_USER_RATE_LIMIT": "1000000",
        "HOSTPULSE_LIVE_HEARTBEAT": "2",
        "HOSTPULSE_LOG_LEVEL": "warning",
    }
    replicas = [Replica(f"replica{i}", tmp_path, env) for i in (1, 2, 3)]
    lb: HAProxy | None = None
    try:
        member_ids = [join(r, redis_url) for r in replicas]  # one by one: which id is whose
        breach_hosts = owned_hosts(member_ids, member_ids[1], 2)
        lb = HAProxy(tmp_path, [r.port for r in replicas], inter="1s")
        wait_until(lambda: set(lb.states().values()) == {"UP"}, 30, "HAProxy: every replica UP")

        check_users_across_replicas(replicas)
        seen = asyncio.run(scenario(tmp_path, replicas, lb, hook, free_port(), breach_hosts))
        check_failed_logins_across_replicas(replicas)
        haproxy_log = lb.output()
    finally:
        if lb is not None:
            lb.stop()
        for r in replicas:
            r.stop()

    acks, killed_at = seen.acks, seen.killed_at
    killed_wall = time.time() - (time.monotonic() - killed_at)

    # HAProxy took the killed replica out and put it back
    assert "replica2 is DOWN" in haproxy_log and "replica2 is UP" in haproxy_log, haproxy_log[
        -3000:
    ]

    # every sender's backlog is gone within 30 s of the kill
    assert acks.abandoned == [], f"never acknowledged: {acks.abandoned[:5]}"
    late = [t - killed_at for t in acks.retried_done if t - killed_at > DRAIN_S]
    assert late == [], f"resends acknowledged later than {DRAIN_S} s after the kill: {late[:5]}"
    spool = [(t - killed_at, n) for t, n in seen.agent_pending if t >= killed_at]
    drained = [t for t, n in spool if t <= DRAIN_S and n <= 1]
    assert drained, f"the real agent's spool did not drain within {DRAIN_S} s: {spool}"
    agent_state = json.loads((tmp_path / "agent-spool" / "state.json").read_text())["counters"]
    assert agent_state["sent"] == agent_state["queued"] > 0, agent_state
    assert agent_state.get("rejected", 0) == 0, agent_state

    # one notification per breached host, from whichever replica owned it
    firing: dict[str, int] = defaultdict(int)
    for _, body in hook.bodies:
        if body.get("rule_id") == BREACH_RULE:
            for alert in body["alerts"]:
                firing[alert["host"]] += 1
    assert dict(firing) == {h: 1 for h in breach_hosts}, hook.bodies

    assert all(w.seen for w in seen.watches), [w.name for w in seen.watches if not w.seen]
    # a dashboard on any replica sees every host, whoever ingested it
    for w in seen.watches:
        missed = w.missed(acks)
        when = sorted(round(t - killed_wall, 1) for m in missed.values() for t in m)
        assert missed == {}, (
            f"{w.name} missed {len(when)} live samples of {len(missed)} hosts, acknowledged at "
            f"{when[:20]}... s after the kill; its spans {w.spans}, ends {w.ended}"
        )

    assert vm.alive, vm.tail()
    # every acknowledged sample is in VictoriaMetrics, exactly once per series
    stored = export_by_host(vm, HOST_LABEL)
    for host, stamps in acks.stamps.items():
        want = sorted(set(stamps))
        series = stored.get(host, [])
        assert len(series) == acks.series.get(host, 1), (host, len(series))
        wrong = [len(s) for s in series if s != want]
        assert wrong == [], f"{host}: {len(want)} sent, series hold {wrong[:5]}"
    memory = vm.export(f'node_memory_used_bytes{{{HOST_LABEL}="real-agent"}}')
    assert len(memory) == 1 and len(set(memory[0]["timestamps"])) == agent_state["sent"]
