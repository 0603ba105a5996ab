"""One replica's part in the cluster: its membership heartbeat, the publisher of what it
ingested and of its cache invalidations, and the subscriber that feeds the other replicas'
batches to its live clients and to the alert engine (for the hosts it owns).

Channels (``hostpulse:<db>:``): ``ingest`` carries one ``wire`` message per acknowledged
ingest request; ``events`` carries JSON invalidations: ``{"kind": "users"}`` (a user created,
changed or deleted), ``{"kind": "keys", "key_id": 7, "host_id": null}`` (an agent key revoked,
or a host's key replaced), ``{"kind": "alerts"}`` (rules, channels or silences changed),
``{"kind": "ack", "alert_id": "...", "by": "alice"}`` (for the replica that owns the alert).

Bounds: a replica queues at most ``MAX_OUTBOX`` messages / ``MAX_OUTBOX_BYTES`` for Redis and
drops (and counts) the rest while Redis is slow or down, so ingest never waits on Redis; Redis
disconnects a subscriber that falls more than its ``client-output-buffer-limit pubsub`` behind
(32 MB by default), which then resubscribes; a subscriber handles each message synchronously
(decoding only the batches it needs), so it holds no queue of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from redis.asyncio import Redis

from hostpulse.alerts.service import AlertService
from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.protocol.live_pb2 import FleetSummary, HostSummary, LiveFrame
from hostpulse.server.auth.service import AuthService
from hostpulse.server.cluster import wire
from hostpulse.server.cluster.connection import (
    PREFIX,
    RedisFailure,
    channel_name,
    open_client,
    shown,
)
from hostpulse.server.cluster.limits import SharedLoginThrottle, SharedRateLimiter
from hostpulse.server.cluster.ownership import HEARTBEAT_S, Claims, Membership
from hostpulse.server.live import LiveHub, summarize

logger = logging.getLogger(__name__)

MAX_OUTBOX = 1024
MAX_OUTBOX_BYTES = 64 * 1024 * 1024
PIPELINE = 64
SECRET_KEY = f"{PREFIX}auth:signing-secret"
RETRY_S = 1.0
WARN_EVERY_S = 60.0
FLEET_QUIET_S = 1.0
PUBLISH_GATHER_S = 0.02
"""The publisher waits this long after the first message of a quiet spell, so that the
messages of the requests acknowledged meanwhile go to Redis in one pipeline (one round trip and
one read for the subscribers, not one each; live views and alerts get them that much later)."""


class ClusterError(RuntimeError):
    pass


class ClusterNode:
    def __init__(self, client: Redis, hub: LiveHub) -> None:
        self.client = client
        self.hub = hub
        self.origin = uuid.uuid4().bytes
        self.id = self.origin.hex()
        self.membership = Membership(client, self.id)
        self.claims = Claims(client, self.id)
        self.ingest_channel = self.owner_channel(self.id)
        self.events_channel = channel_name(client, "events")
        self.fleet_channel = channel_name(client, "fleet")
        self.alerts_channel = channel_name(client, "alerts")
        self._live_prefix = channel_name(client, "live:")
        self._pubsub: Any = None
        self._following: set[str] = set()
        """The live channels subscribed to (what this replica's clients watch)."""
        self._follow_lock = asyncio.Lock()
        self._fleet_quiet_until = -1.0
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_bytes = 0
        self._wake = asyncio.Event()
        self._rebalance = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._side: set[asyncio.Task[None]] = set()
        self.auth: AuthService | None = None
        self.alerts: AlertService | None = None
        self._feed: Callable[[HostBatch, bytes], None] | None = None
        self._warned = -WARN_EVERY_S
        self.published = 0
        self.dropped = 0
        self.received_batches = 0
        self.subscribed = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.membership.beat()
        except RedisFailure as exc:
            raise ClusterError(f"cannot join the replicas through Redis: {exc}") from exc
        self._tasks += [
            asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"),
            asyncio.create_task(self._publisher(), name="cluster-publish"),
            asyncio.create_task(self._subscriber(), name="cluster-subscribe"),
            asyncio.create_task(self._rebalancer(), name="cluster-rebalance"),
        ]
        logger.info("joined the replicas", extra={"replica": self.id})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *self._side]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(*RedisFailure):
            await self.membership.beat(0)  # leave: the others take our hosts at once

    async def share_secret(self, local: bytes) -> bytes:
        """The replicas' signing secret: the first replica's, kept in Redis (and put back
        by every heartbeat should Redis lose it)."""
        await self.client.set(SECRET_KEY, local, nx=True)
        shared = await self.client.get(SECRET_KEY)
        self._secret = shared.encode() if isinstance(shared, str) else (shared or local)
        return self._secret

    # -- wiring ---------------------------------------------------------------------------------

    async def attach_auth(self, auth: AuthService) -> None:
        cfg = auth.config
        auth.users.use_secret(await self.share_secret(auth.users._secret))
        auth.users.throttle = SharedLoginThrottle(
            self.client, cfg.login_failures, cfg.login_window_s, time.monotonic
        )
        auth.user_rate = SharedRateLimiter(
            self.client, "user", cfg.user_rate_limit, cfg.rate_window_s, time.monotonic
        )
        auth.agent_rate = SharedRateLimiter(
            self.client, "agent", cfg.agent_rate_limit, cfg.rate_window_s, time.monotonic
        )
        local_users = auth.users.changed

        def users_changed() -> None:
            local_users()
            self.event({"kind": "users"})

        auth.users.changed = users_changed
        auth.agents.changed = lambda key_id, host_id: self.event(
            {"kind": "keys", "key_id": key_id, "host_id": host_id}
        )
        self.auth = auth

    def attach_alerts(
        self, service: AlertService, feed: Callable[[HostBatch, bytes], None]
    ) -> None:
        self.alerts = service
        self._feed = feed
        self._rebalance.set()  # members may have changed while the service started
        service.changed = lambda: self.event({"kind": "alerts"})
        service.forward_ack = lambda alert_id, by: self.event(
            {"kind": "ack", "alert_id": alert_id, "by": by}
        )

    # -- publishing -----------------------------------------------------------------------------

    def owner_channel(self, member: str) -> str:
        """The channel of the batches whose alerts ``member`` evaluates."""
        return channel_name(self.client, f"ingest:{member}")

    def live_channel(self, host_id: str) -> str:
        return f"{self._live_prefix}{host_id}"

    def on_ingest(self, request: IngestRequest, signatures: Sequence[bytes]) -> None:
        """Ingest listener: queue the acknowledged request for the other replicas, each batch
        only where it is needed: to the replica that evaluates its host's alerts, on its
        host's live channel (Redis passes it on only to replicas whose clients watch that
        host), and its fleet card on the fleet channel (while some replica listens there)."""
        by_owner: dict[str, list[wire.Part]] = {}
        summaries: list[HostSummary] = []
        fleet = time.monotonic() >= self._fleet_quiet_until
        for part, batch in zip(wire.parts_of(request, signatures), request.batches, strict=True):
            self._queue(self.live_channel(part.host_id), wire.encode_parts(self.origin, [part]))
            if self.alerts is not None:
                owner = self.membership.owner(part.host_id)
                if owner != self.id:
                    by_owner.setdefault(owner, []).append(part)
            if fleet:
                summary = summarize(batch)
                if summary is not None:
                    summaries.append(summary)
        for owner, parts in by_owner.items():
            self._queue(self.owner_channel(owner), wire.encode_parts(self.origin, parts))
        if summaries:
            payload = FleetSummary(hosts=summaries).SerializeToString()
            self._queue(self.fleet_channel, wire.tag(self.origin, payload))

    def forward_alerts(self, frame: LiveFrame) -> None:
        """Alert feed listener: this replica's alert events for the other replicas' clients."""
        self._queue(self.alerts_channel, wire.tag(self.origin, frame.SerializeToString()))

    def event(self, message: dict[str, Any]) -> None:
        self._queue(self.events_channel, json.dumps({**message, "origin": self.id}).encode())

    def _queue(self, channel: str, data: bytes) -> None:
        if len(self._outbox) >= MAX_OUTBOX or self._outbox_bytes + len(data) > MAX_OUTBOX_BYTES:
            self.dropped += 1
            self._warn("Redis too slow: messages for the other replicas dropped", None)
            return
        self._outbox.append((channel, data))
        self._outbox_bytes += len(data)
        self._wake.set()

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(PUBLISH_GATHER_S)
            self._wake.clear()
            while self._outbox:
                chunk: list[tuple[str, bytes]] = []
                while self._outbox and len(chunk) < PIPELINE:
                    item = self._outbox.popleft()
                    self._outbox_bytes -= len(item[1])
                    chunk.append(item)
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for channel, data in chunk:
                            pipe.publish(channel, data)
                        receivers = await pipe.execute()
                    self.published += len(chunk)
                    self._note_fleet_listeners(chunk, receivers)
                except RedisFailure as exc:
                    self.dropped += len(chunk)
                    self._warn("Redis unavailable: messages for the other replicas dropped", exc)

    def _note_fleet_listeners(self, chunk: list[tuple[str, bytes]], receivers: list[Any]) -> None:
        """No replica listening on the fleet channel (this one counts: it receives its own):
        no fleet cards for ``FLEET_QUIET_S``; a fleet view opened meanwhile gets the other
        replicas' cards that much later (and this replica's own at once)."""
        for (channel, _), count in zip(chunk, receivers, strict=True):
            if channel == self.fleet_channel:
                if isinstance(count, int) and count == 0:
                    self._fleet_quiet_until = time.monotonic() + FLEET_QUIET_S
                else:
                    self._fleet_quiet_until = -1.0

    def _warn(self, message: str, exc: BaseException | None) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_S:
            self._warned = now
            error = None if exc is None else str(exc) or type(exc).__name__
            logger.warning(message, extra={"dropped": self.dropped, "error": error})

    # -- membership -----------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                changed = await self.membership.beat()
                if self._secret:
                    await self.client.set(SECRET_KEY, self._secret, nx=True)
            except RedisFailure as exc:
                # keep the hosts we own: the others cannot see Redis either, or they take
                # them over once our entry expires (then claims keep notifications single)
                self._warn("Redis unavailable: alert ownership frozen", exc)
                continue
            if changed:
                self._rebalance.set()

    async def _rebalancer(self) -> None:
        """Moves alert state after member changes, off the heartbeat (a slow database must
        not make this replica miss its heartbeats and look dead); one move at a time."""
        while True:
            await self._rebalance.wait()
            self._rebalance.clear()
            if self.alerts is None:
                continue
            try:
                await self.alerts.rebalance()
            except Exception:
                logger.exception("could not take up the alerts of the hosts gained")

    _secret: bytes = b""

    # -- subscribing ----------------------------------------------------------------------------

    def _wanted(self) -> set[str]:
        """The live channels this replica's clients need."""
        if not self.hub.clients:
            return set()
        fleet, hosts = self.hub.watched()
        wanted = {self.live_channel(h) for h in hosts}
        if fleet:
            wanted.add(self.fleet_channel)
        if self.hub.alert_clients():
            wanted.add(self.alerts_channel)
        return wanted

    async def follow(self) -> None:
        """Subscribe to the live channels this replica's clients watch now, and leave the
        others (the hub's follower: awaited before a client is told it is subscribed, so
        nothing ingested through another replica after that is missed)."""
        async with self._follow_lock:
            pubsub = self._pubsub
            if pubsub is None:  # not connected: the subscriber subscribes when it is
                return
            wanted = self._wanted()
            add, drop = wanted - self._following, self._following - wanted
            try:
                if add:
                    await pubsub.subscribe(*sorted(add))
                if drop:
                    await pubsub.unsubscribe(*sorted(drop))
            except RedisFailure as exc:
                self._warn("Redis unavailable: not receiving the other replicas' samples", exc)
                return
            self._following = wanted

    async def _subscriber(self) -> None:
        first = True
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                async with self._follow_lock:
                    following = self._wanted()
                    await pubsub.subscribe(self.ingest_channel, self.events_channel, *following)
                    self._pubsub, self._following = pubsub, following
                if not first:
                    self._resync()
                first = False
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._handle(message)
            except RedisFailure as exc:
                self.subscribed.clear()
                self._warn("Redis unavailable: not receiving the other replicas' samples", exc)
                await asyncio.sleep(RETRY_S)
            finally:
                self._pubsub = None
                with contextlib.suppress(*RedisFailure):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _resync(self) -> None:
        """Back after a gap: what we may have missed is read again."""
        if self.auth is not None:
            self.auth.users.forget_roles()
            self.auth.agents.forget_all()
            self.hub.auth_changed()
        self._reload_alerts()

    def _handle(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        data = message["data"]
        try:
            if channel.startswith(self._live_prefix):
                self._on_live(data)
            elif channel == self.ingest_channel:
                self._on_batches(data)
            elif channel == self.fleet_channel:
                self._on_fleet(data)
            elif channel == self.alerts_channel:
                self._on_alerts(data)
            elif channel == self.events_channel:
                self._on_event(json.loads(data))
        except (wire.WireError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignored a malformed cluster message", extra={"error": str(exc)})
        except Exception:  # a listener's bug must not stop the subscription
            logger.exception("cluster message handling failed")

    def _on_batches(self, data: bytes) -> None:
        """Batches of hosts whose alerts this replica evaluates, ingested by another."""
        origin, parts = wire.decode(data)
        feed = self._feed
        if origin == self.origin or feed is None:
            return
        for part in parts:
            if self.membership.owns(part.host_id):  # else the members changed meanwhile
                self.received_batches += 1
                feed(part.batch(), part.signature)

    def _on_live(self, data: bytes) -> None:
        """A host's batch for this replica's clients that watch it."""
        origin, parts = wire.decode(data)
        if origin == self.origin or not self.hub.clients:
            return
        batches = [part.batch() for part in parts]
        self.received_batches += len(batches)
        self.hub.publish(IngestRequest(batches=batches), cards=False)

    def _on_fleet(self, data: bytes) -> None:
        origin, payload = wire.untag(data)
        if origin != self.origin and self.hub.clients:
            self.hub.publish_summaries(list(FleetSummary.FromString(payload).hosts))

    def _on_alerts(self, data: bytes) -> None:
        origin, payload = wire.untag(data)
        if origin != self.origin and self.hub.alert_clients():
            self.hub.publish_alerts(LiveFrame.FromString(payload))

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("origin") == self.id:
            return
        kind = event["kind"]
        if kind == "users" and self.auth is not None:
            self.auth.users.forget_roles()
            self.hub.auth_changed()
        elif kind == "keys" and self.auth is not None:
            key_id, host_id = event.get("key_id"), event.get("host_id")
            self.auth.agents.forget(
                key_id=None if key_id is None else int(key_id),
                host_id=None if host_id is None else str(host_id),
            )
        elif kind == "alerts":
            self._reload_alerts()
        elif kind == "ack" and self.alerts is not None:
            self._side_task(self.alerts.acknowledge_held(str(event["alert_id"]), str(event["by"])))

    def _reload_alerts(self) -> None:
        if self.alerts is None:
            return
        self._side_task(self._reload(self.alerts))

    def _side_task(self, coro: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                logger.exception("cluster event handling failed")

        task = asyncio.create_task(guarded())
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    @staticmethod
    async def _reload(alerts: AlertService) -> None:
        try:
            await alerts.reload()
        except Exception:
            logger.exception("could not read the alert rules, channels and silences again")


async def tell_replicas(url: str, events: list[dict[str, object]]) -> None:
    """Publish invalidations from outside a server (``hostpulse user remove``, ``hostpulse key
    revoke`` with ``HOSTPULSE_REDIS_URL``): the running replicas act on them at once. Redis
    unreachable: logged; the replicas' caches expire within 10 s anyway."""
    client = open_client(url)
    try:
        channel = channel_name(client, "events")
        for event in events:
            await client.publish(channel, json.dumps({**event, "origin": "cli"}).encode())
    except RedisFailure as exc:
        logger.warning(
            "could not tell the running replicas through Redis; they notice within 10 s",
            extra={"error": str(exc) or type(exc).__name__},
        )
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def running_cluster(url: str, hub: LiveHub) -> AsyncIterator[ClusterNode]:
    """This replica in the cluster at ``url`` until exit (then it leaves the member list)."""
    client = open_client(url)
    try:
        node = ClusterNode(client, hub)
        await node.start()
        logger.info("sharing through Redis", extra={"redis": shown(url)})
        try:
            yield node
        finally:
            await node.stop()
    finally:
        await client.aclose()
