"""Live fan-out: every ingested batch goes to the WebSocket clients subscribed to its host, and a
small per-host summary to the clients of the fleet view.

Ingest calls ``LiveHub.publish`` after the store acknowledged a request. ``publish`` never awaits:
it encodes each frame once per wire format in use and appends it to each interested client's
bounded outbox (in frames and in bytes). A client whose outbox is full is *dropped* (its
connection is closed by its own sender task with code 1013), so a slow or stalled browser can
never slow ingest down nor make the server hold more than ``outbox_bytes`` for it.

Fleet cards are coalesced: the summaries of the hosts that reported within ``fleet_every``
seconds go out as one frame (the newest card per host), not one frame per ingest request.
A fleet of 1,000 hosts at 5 s sends 200 requests a second; with 10 dashboards on the fleet
view that was 2,000 WebSocket messages a second, and a client that fell 1.3 s behind
overflowed its outbox of 256 frames and was dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from google.protobuf import json_format

from hostpulse.protocol import HostBatch, IngestRequest, Snapshot
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
DEFAULT_FLEET_EVERY_S = 0.25
"""Seconds over which fleet cards are gathered into one frame (0: a frame per request)."""

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


Wanted = dict[int, tuple[str, str]]
"""Series index -> (metric, last label value) of the series a fleet card shows."""
_WANTED_CACHE = 20_000
"""Series tables whose card positions are remembered (by signature), at most."""


def card_series(batch: HostBatch) -> Wanted:
    """The series of ``batch``'s table that a fleet card shows."""
    wanted: Wanted = {}
    for i, sd in enumerate(batch.series):
        if sd.metric in _SUMMARY_METRICS:
            label = sd.labels[-1].value if sd.labels else ""
            wanted[i] = (sd.metric, label)
    return wanted


def summarize(batch: HostBatch, wanted: Wanted | None = None) -> HostSummary | None:
    """The fleet card of ``batch``'s host from its newest snapshot (None without snapshots).
    ``wanted``: ``card_series(batch)``, when known already."""
    snaps = batch.snapshots
    if not snaps:
        return None
    snap = snaps[0] if len(snaps) == 1 else max(snaps, key=_stamp)  # an agent sends one
    if wanted is None:
        wanted = card_series(batch)
    index, values = snap.series_index, snap.values
    found = _in_place(wanted, index, values)
    if found is None:
        found = [(wanted[i], v) for i, v in zip(index, values, strict=True) if i in wanted]
    fields: dict[str, float] = {}
    disk = -math.inf
    rx = tx = 0.0
    has_rx = has_tx = False
    for (metric, label), value in found:
        if metric == _CPU:
            fields["cpu_percent"] = value
        elif metric == _MEM:
            fields["memory_percent"] = value
        elif metric == _LOAD:
            fields["load1"] = value
        elif metric == _DISK:
            disk = max(disk, value)
        elif label not in _LOOPBACK:
            if metric == _RX:
                rx, has_rx = rx + value, True
            else:
                tx, has_tx = tx + value, True
    if disk > -math.inf:
        fields["disk_percent"] = disk
    if has_rx:
        fields["net_rx_bytes_per_second"] = rx
    if has_tx:
        fields["net_tx_bytes_per_second"] = tx
    host = batch.host
    host_id = host.host_id
    # one constructor call: every field set at once, not one attribute assignment each
    return HostSummary(
        host_id=host_id,
        hostname=host.hostname or host_id,
        timestamp_ms=snap.timestamp_ms,
        interval_seconds=host.interval_seconds,
        **fields,
    )


def _stamp(snap: Snapshot) -> int:
    return snap.timestamp_ms


def _in_place(
    wanted: Wanted, index: Sequence[int], values: Sequence[float]
) -> list[tuple[tuple[str, str], float]] | None:
    """Each card series' value when every one is at its own position (agents send the
    table's order: then just those are read, not the whole index; a series appears once in a
    snapshot, validated); None when one is not."""
    n = len(index)
    found = []
    for i, card in wanted.items():
        if i >= n or index[i] != i:
            return None
        found.append((card, values[i]))
    return found


class LiveHub:
    """The set of connected clients and the fan-out of ingested batches to them."""

    def __init__(
        self,
        *,
        outbox: int = DEFAULT_OUTBOX,
        outbox_bytes: int = DEFAULT_OUTBOX_BYTES,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        fleet_every: float = DEFAULT_FLEET_EVERY_S,
        clock: Callable[[], float],
    ) -> None:
        self.outbox = outbox
        self.outbox_bytes = outbox_bytes
        self.heartbeat_s = heartbeat_s
        self.fleet_every = fleet_every
        self.clock = clock
        self._cards: dict[str, HostSummary] = {}  # host -> its newest card not yet sent
        self._wanted: dict[bytes, Wanted] = {}  # series table signature -> its card series
        self._cards_due: asyncio.TimerHandle | None = None
        self._clients: set[LiveClient] = set()
        self.dropped_total = 0
        self.published_batches = 0
        self._auth_changed = asyncio.Event()
        self.follower: Callable[[], Awaitable[None]] | None = None
        """Awaited by ``subscriptions_changed``."""

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

    async def subscriptions_changed(self) -> None:
        """A client connected, changed what it watches or left: tell the follower (the cluster
        node subscribes to what its clients watch); returns once it has."""
        if self.follower is not None:
            await self.follower()

    def publish(
        self,
        request: IngestRequest,
        signatures: Sequence[bytes] | None = None,
        *,
        cards: bool = True,
    ) -> None:
        """Forward ``request`` to the subscribed clients (``cards``: and its fleet cards).
        Never blocks, never raises for a client: a client that cannot keep up is dropped.
        ``signatures``: of each batch's series table (the ingest's ``series_signature``), to
        find a card's series once per table rather than in every request."""
        if not self._clients:
            return
        fleet_clients = [c for c in self._clients if c.fleet and not c.dropped] if cards else []
        host_clients = [c for c in self._clients if c.hosts and not c.dropped]
        summaries: list[HostSummary] = []
        for b, batch in enumerate(request.batches):
            if fleet_clients:
                summary = summarize(batch, self._card_series(batch, signatures, b))
                if summary is not None:
                    summaries.append(summary)
            host_id = batch.host.host_id
            targets = [c for c in host_clients if host_id in c.hosts]
            if targets:
                self._fan_out(_Encoded(LiveFrame(samples=batch)), targets)
        if summaries:
            if self.fleet_every <= 0:
                self._fan_out(
                    _Encoded(LiveFrame(fleet=FleetSummary(hosts=summaries))), fleet_clients
                )
            else:
                self._gather(summaries)
        self.published_batches += len(request.batches)

    def _card_series(self, batch: HostBatch, signatures: Sequence[bytes] | None, b: int) -> Wanted:
        if signatures is None:
            return card_series(batch)
        wanted = self._wanted.get(signatures[b])
        if wanted is None:
            if len(self._wanted) >= _WANTED_CACHE:
                self._wanted.clear()
            wanted = self._wanted[signatures[b]] = card_series(batch)
        return wanted

    def _gather(self, summaries: list[HostSummary]) -> None:
        """Keep each host's newest card until the next fleet frame (at most ``fleet_every``
        seconds away)."""
        for card in summaries:
            held = self._cards.get(card.host_id)
            if held is None or held.timestamp_ms <= card.timestamp_ms:
                self._cards[card.host_id] = card
        if self._cards_due is None:
            loop = asyncio.get_running_loop()
            self._cards_due = loop.call_later(self.fleet_every, self._send_cards)

    def _send_cards(self) -> None:
        self._cards_due = None
        cards, self._cards = self._cards, {}
        targets = [c for c in self._clients if c.fleet and not c.dropped]
        if cards and targets:
            frame = LiveFrame(fleet=FleetSummary(hosts=list(cards.values())))
            self._fan_out(_Encoded(frame), targets)

    def publish_summaries(self, summaries: list[HostSummary]) -> None:
        """Send fleet cards (another replica's hosts) to the fleet clients, gathered like this
        replica's own (never blocks)."""
        targets = [c for c in self._clients if c.fleet and not c.dropped]
        if not (targets and summaries):
            return
        if self.fleet_every <= 0:
            self._fan_out(_Encoded(LiveFrame(fleet=FleetSummary(hosts=summaries))), targets)
        else:
            self._gather(summaries)

    def close(self) -> None:
        """Drop the cards not sent yet and their pending frame (the server is stopping)."""
        if self._cards_due is not None:
            self._cards_due.cancel()
            self._cards_due = None
        self._cards = {}

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
