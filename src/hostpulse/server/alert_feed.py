"""Alert events on the live WebSocket: what fired, changed or ended, pushed to the clients that
subscribed with ``"alerts": true`` so the dashboard needs no polling.

``AlertService`` tells ``AlertFeed.changed`` of every change synchronously (no I/O there); the
feed queues it and one task turns the queue into ``AlertEvents`` frames in order, naming hosts on
the way (that lookup may wait on the database). A client that subscribes gets a snapshot from
the same task, so an event can never overtake the snapshot it is newer than: what the snapshot
shows is read when it is built, and any later event only repeats or updates it (events are
keyed by alert id and idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

from hostpulse.alerts.service import AlertService
from hostpulse.alerts.types import AlertInstance, State
from hostpulse.protocol.live_pb2 import ActiveAlert, AlertEvents, LiveFrame
from hostpulse.server.live import LiveClient, LiveHub

logger = logging.getLogger(__name__)

MAX_QUEUE = 10_000
"""Changes waiting to be sent; past this the feed sends one snapshot instead of each change."""

_ACTIVE = (State.PENDING, State.FIRING)


def severity_name(value: int | None) -> Literal["warning", "critical"] | None:
    return None if not value else ("critical" if value >= 2 else "warning")


def alert_fields(
    service: AlertService, a: AlertInstance, names: dict[str, str], now_ms: int
) -> dict[str, Any]:
    """One active alert as the API and the live feed show it (``AlertOut``'s fields)."""
    rule = service.engine.rule(a.rule_id)
    silence = service.engine.silence_of(a, now_ms)
    return {
        "id": a.id,
        "rule_id": a.rule_id,
        "rule_title": rule.title if rule else a.rule_id,
        "host": a.host,
        "host_name": names.get(a.host, a.host),
        "labels": dict(a.labels),
        "state": a.state.value,
        "severity": severity_name(a.severity),
        "value": None if math.isnan(a.value) or math.isinf(a.value) else a.value,
        "pending_since_ms": a.pending_since_ms,
        "fired_at_ms": a.fired_at_ms,
        "acked_by": a.acked_by,
        "acked_at_ms": a.acked_at_ms,
        "silenced": silence is not None,
        "silence_id": silence[0] if silence else None,
        "silenced_until_ms": silence[1] if silence else None,
    }


def _message(fields: dict[str, Any]) -> ActiveAlert:
    return ActiveAlert(**{k: v for k, v in fields.items() if v is not None})


_Change = tuple[list[AlertInstance] | None, list[str]] | LiveClient


class AlertFeed:
    """Queues the service's alert changes and publishes them as frames on the hub."""

    def __init__(
        self,
        service: AlertService,
        hub: LiveHub,
        forward: Callable[[LiveFrame], None] | None = None,
    ) -> None:
        self.service = service
        self.hub = hub
        self.forward = forward
        """Several replicas: hands each event frame to the others' clients too."""
        self._queue: asyncio.Queue[_Change] = asyncio.Queue()
        self.sent_frames = 0

    def changed(self, changed: Sequence[AlertInstance] | None, removed: Sequence[str]) -> None:
        """The service's listener: queue (never wait)."""
        if self.forward is None and not self.hub.alert_clients():
            return
        if self._queue.qsize() >= MAX_QUEUE:
            changed = None  # far behind: one snapshot instead of each change
        self._queue.put_nowait((None if changed is None else list(changed), list(removed)))

    def want_snapshot(self, client: LiveClient) -> None:
        """Send ``client`` every active alert (after it subscribed), in order with events."""
        self._queue.put_nowait(client)

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._handle(item)
            except Exception:  # keep the feed alive; a client reconnecting gets a snapshot
                logger.exception("alert feed: could not send an alert event")

    async def _handle(self, item: _Change) -> None:
        now_ms = self.service.clock.now_ms()
        if isinstance(item, LiveClient):
            if item.alerts and not item.dropped:
                frame = await self.snapshot(now_ms)
                self.hub.send_to(item, frame)
            return
        changed, removed = item
        if changed is None:  # anything may look different: a snapshot to everyone
            self._publish(await self.snapshot(now_ms))
            return
        ended = set(removed)
        live: list[AlertInstance] = []
        for inst in changed:
            if inst.state in _ACTIVE:
                live.append(inst)
            else:
                ended.add(inst.id)
        names = await self.service.host_names(a.host for a in live)
        events = AlertEvents(
            alerts=[_message(alert_fields(self.service, a, names, now_ms)) for a in live],
            ended=sorted(ended),
            server_time_ms=now_ms,
        )
        self._publish(LiveFrame(alerts=events))

    def _publish(self, frame: LiveFrame) -> None:
        self.hub.publish_alerts(frame)
        if self.forward is not None:
            self.forward(frame)
        self.sent_frames += 1

    async def snapshot(self, now_ms: int) -> LiveFrame:
        # several replicas: every replica's alerts (as saved), not only this one's hosts'
        active = await self.service.current()
        names = await self.service.host_names(a.host for a in active)
        return LiveFrame(
            alerts=AlertEvents(
                snapshot=True,
                alerts=[_message(alert_fields(self.service, a, names, now_ms)) for a in active],
                server_time_ms=now_ms,
            )
        )


@contextlib.asynccontextmanager
async def running_feed(
    service: AlertService, hub: LiveHub, forward: Callable[[LiveFrame], None] | None = None
) -> AsyncIterator[AlertFeed]:
    """The feed listening to ``service`` and its task running, both stopped on exit."""
    feed = AlertFeed(service, hub, forward)
    service.listeners.append(feed.changed)
    task = asyncio.create_task(feed.run(), name="alert-feed")
    try:
        yield feed
    finally:
        service.listeners.remove(feed.changed)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
