"""Live fan-out: every ingested batch goes to the WebSocket clients subscribed to its host, and a
small per-host summary to the clients of the fleet view.

Ingest calls ``LiveHub.publish`` after the store acknowledged a request. ``publish`` never awaits:
it encodes each frame once per wire format in use and appends it to each interested client's
bounded outbox (in frames and in bytes). A client whose outbox is full is *dropped* (its
connection is closed by its own sender task with code 1013), so a slow or stalled browser can
never slow ingest down nor make the server hold more than ``outbox_bytes`` for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from google.protobuf import json_format

from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.protocol.live_pb2 import (
    FleetSummary,
    Heartbeat,
    HostSummary,
    LiveError,
    LiveFrame,
    Subscribed,
)

logger = logging.getLogger(__name__)

DEFAULT_OUTBOX = 256
"""Frames a client may have waiting before it counts as too slow and is dropped."""
DEFAULT_OUTBOX_BYTES = 8 * 1024 * 1024
"""Bytes of frames a client may have waiting before it is dropped (one frame larger than this
is still queued when nothing else is waiting, so every frame can be delivered)."""
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_FLEET_INTERVAL_S = 0.2
"""Fleet summaries are gathered for this long and sent as one frame (the newest per host).
Every agent posts its own request, so 10,000 hosts at a 5 s interval are 2,000 requests a
second: one fleet frame each made the browser decode and apply 2,000 frames a second, and a
fleet client's outbox (256 frames) held only an eighth of a second of them. Gathered, they are
5 frames a second of about 400 summaries; a card shows its value at most this much later."""

_CPU = "cpu_busy_percent"
_MEM = "memory_usage_percent"
_DISK = "filesystem_usage_percent"
_RX = "network_receive_bytes_per_second"
_TX = "network_transmit_bytes_per_second"
_LOAD = "cpu_load1"
_SUMMARY_METRICS = frozenset({_CPU, _MEM, _DISK, _RX, _TX, _LOAD})
_LOOPBACK = frozenset({"lo", "lo0"})


class WireFormat(StrEnum):
    PROTOBUF = "protobuf"
    JSON = "json"


Payload = bytes | str


def encode(frame: LiveFrame, fmt: WireFormat) -> Payload:
    if fmt is WireFormat.PROTOBUF:
        return frame.SerializeToString()
    return json_format.MessageToJson(frame, indent=None, preserving_proto_field_name=True)


class _Encoded:
    """One frame, encoded lazily at most once per format."""

    __slots__ = ("_cache", "frame")

    def __init__(self, frame: LiveFrame) -> None:
        self.frame = frame
        self._cache: dict[WireFormat, Payload] = {}

    def get(self, fmt: WireFormat) -> Payload:
        found = self._cache.get(fmt)
        if found is None:
            found = self._cache[fmt] = encode(self.frame, fmt)
        return found


@dataclass(eq=False, slots=True)
class LiveClient:
    """One connection's subscriptions and outbox. Its sender task drains ``outbox``."""

    fmt: WireFormat
    limit: int
    limit_bytes: int = DEFAULT_OUTBOX_BYTES
    hosts: frozenset[str] = frozenset()
    fleet: bool = False
    alerts: bool = False
    outbox: deque[Payload] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    sent: int = 0
    queued_bytes: int = 0

    def offer(self, payload: Payload) -> bool:
        """Queue ``payload``; False (and the client marked dropped) when the outbox is full in
        frames or in bytes."""
        if self.dropped:
            return False
        size = len(payload)
        if len(self.outbox) >= self.limit or (
            self.outbox and self.queued_bytes + size > self.limit_bytes
        ):
            self.dropped = True
            self.outbox.clear()
            self.queued_bytes = 0
            self.wake.set()
            return False
        self.outbox.append(payload)
        self.queued_bytes += size
        self.wake.set()
        return True

    def take(self) -> Payload:
        """The oldest queued frame (the sender's side of ``offer``)."""
        payload = self.outbox.popleft()
        self.queued_bytes -= len(payload)
        return payload

    def subscribed_frame(self, heartbeat_s: float) -> Payload:
        sub = Subscribed(
            hosts=sorted(self.hosts),
            fleet=self.fleet,
            heartbeat_seconds=heartbeat_s,
            alerts=self.alerts,
        )
        frame = LiveFrame(subscribed=sub)
        return encode(frame, self.fmt)


def error_frame(message: str, fmt: WireFormat) -> Payload:
    return encode(LiveFrame(error=LiveError(message=message)), fmt)


def heartbeat_frame(now_ms: int, fmt: WireFormat) -> Payload:
    return encode(LiveFrame(heartbeat=Heartbeat(server_time_ms=now_ms)), fmt)


def summarize(batch: HostBatch) -> HostSummary | None:
    """The fleet card of ``batch``'s host from its newest snapshot (None without snapshots)."""
    if not batch.snapshots:
        return None
    snap = max(batch.snapshots, key=lambda s: s.timestamp_ms)
    wanted: dict[int, tuple[str, str]] = {}
    for i, sd in enumerate(batch.series):
        if sd.metric in _SUMMARY_METRICS:
            label = sd.labels[-1].value if sd.labels else ""
            wanted[i] = (sd.metric, label)
    out = HostSummary(
        host_id=batch.host.host_id,
        hostname=batch.host.hostname or batch.host.host_id,
        timestamp_ms=snap.timestamp_ms,
        interval_seconds=batch.host.interval_seconds,
    )
    disk = -math.inf
    rx = tx = 0.0
    has_rx = has_tx = False
    for idx, value in zip(snap.series_index, snap.values, strict=True):
        found = wanted.get(idx)
        if found is None:
            continue
        metric, label = found
        if metric == _CPU:
            out.cpu_percent = value
        elif metric == _MEM:
            out.memory_percent = value
        elif metric == _LOAD:
            out.load1 = value
        elif metric == _DISK:
            disk = max(disk, value)
        elif label not in _LOOPBACK:
            if metric == _RX:
                rx, has_rx = rx + value, True
            else:
                tx, has_tx = tx + value, True
    if disk > -math.inf:
        out.disk_percent = disk
    if has_rx:
        out.net_rx_bytes_per_second = rx
    if has_tx:
        out.net_tx_bytes_per_second = tx
    return out


class LiveHub:
    """The set of connected clients and the fan-out of ingested batches to them."""

    def __init__(
        self,
        *,
        outbox: int = DEFAULT_OUTBOX,
        outbox_bytes: int = DEFAULT_OUTBOX_BYTES,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        fleet_interval_s: float = DEFAULT_FLEET_INTERVAL_S,
        clock: Callable[[], float],
    ) -> None:
        self.outbox = outbox
        self.outbox_bytes = outbox_bytes
        self.heartbeat_s = heartbeat_s
        self.fleet_interval_s = fleet_interval_s
        self.clock = clock
        self._fleet_pending: dict[str, HostSummary] = {}
        self._fleet_timer: asyncio.TimerHandle | None = None
        self.fleet_frames = 0
        self._clients: set[LiveClient] = set()
        self.dropped_total = 0
        self.published_batches = 0
        self._auth_changed = asyncio.Event()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def connect(self, fmt: WireFormat) -> LiveClient:
        client = LiveClient(fmt=fmt, limit=self.outbox, limit_bytes=self.outbox_bytes)
        self._clients.add(client)
        return client

    def disconnect(self, client: LiveClient) -> None:
        self._clients.discard(client)

    def watched(self) -> tuple[bool, frozenset[str]]:
        """(some client wants the fleet summary, the hosts some client subscribed to): which
        batches from other replicas are worth decoding for this hub."""
        fleet = False
        hosts: set[str] = set()
        for c in self._clients:
            if not c.dropped:
                fleet = fleet or c.fleet
                hosts |= c.hosts
        return fleet, frozenset(hosts)

    def auth_changed(self) -> None:
        """Users or their roles changed (here or on another replica): every connection checks
        its token again now rather than at its next ``live_auth_recheck``."""
        changed, self._auth_changed = self._auth_changed, asyncio.Event()
        changed.set()

    def auth_change(self) -> asyncio.Event:
        """Set at the next ``auth_changed``."""
        return self._auth_changed

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def publish(self, request: IngestRequest) -> None:
        """Forward ``request`` to the subscribed clients. Never blocks, never raises for a
        client: a client that cannot keep up is dropped."""
        if not self._clients:
            return
        fleet_clients = [c for c in self._clients if c.fleet and not c.dropped]
        host_clients = [c for c in self._clients if c.hosts and not c.dropped]
        pending = self._fleet_pending
        for batch in request.batches:
            if fleet_clients:
                summary = summarize(batch)
                if summary is not None:
                    prev = pending.get(summary.host_id)
                    if prev is None or summary.timestamp_ms >= prev.timestamp_ms:
                        pending[summary.host_id] = summary
            host_id = batch.host.host_id
            targets = [c for c in host_clients if host_id in c.hosts]
            if targets:
                self._fan_out(_Encoded(LiveFrame(samples=batch)), targets)
        if pending and self._fleet_timer is None:
            self._schedule_fleet()
        self.published_batches += len(request.batches)

    def _schedule_fleet(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (a script, a test): no timer
            loop = None
        if loop is None or self.fleet_interval_s <= 0:
            self.flush_fleet()
        else:
            self._fleet_timer = loop.call_later(self.fleet_interval_s, self.flush_fleet)

    def flush_fleet(self) -> None:
        """Send the gathered fleet summaries (the newest of each host) as one frame."""
        self._fleet_timer = None
        summaries = list(self._fleet_pending.values())
        self._fleet_pending = {}
        targets = [c for c in self._clients if c.fleet and not c.dropped]
        if summaries and targets:
            self.fleet_frames += 1
            self._fan_out(_Encoded(LiveFrame(fleet=FleetSummary(hosts=summaries))), targets)

    def close(self) -> None:
        """Stop the pending fleet flush (the server is stopping)."""
        if self._fleet_timer is not None:
            self._fleet_timer.cancel()
            self._fleet_timer = None
        self._fleet_pending = {}

    def alert_clients(self) -> bool:
        """Whether any client wants alert events (else the feed need not build them)."""
        return any(c.alerts for c in self._clients)

    def publish_alerts(self, frame: LiveFrame) -> None:
        """Send an ``alerts`` frame to every client subscribed to alerts (never blocks)."""
        targets = [c for c in self._clients if c.alerts and not c.dropped]
        if targets:
            self._fan_out(_Encoded(frame), targets)

    def send_to(self, client: LiveClient, frame: LiveFrame) -> None:
        """Send ``frame`` to one client (a snapshot after it subscribed)."""
        if client in self._clients and not client.dropped:
            self._fan_out(_Encoded(frame), [client])

    def _fan_out(self, frame: _Encoded, targets: Iterable[LiveClient]) -> None:
        for client in targets:
            if client.dropped:
                continue
            if not client.offer(frame.get(client.fmt)):
                self.dropped_total += 1
                logger.warning(
                    "live client dropped: outbox full",
                    extra={
                        "limit": client.limit,
                        "limit_bytes": client.limit_bytes,
                        "sent": client.sent,
                    },
                )
