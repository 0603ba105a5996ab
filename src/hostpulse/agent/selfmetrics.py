"""The agent's own delivery metrics: read by the exporter and shipped like any other metric.

``AgentCollector`` is a ``Collector`` (catalog collector ``agent``): register it with the
others and its samples appear in ``/metrics`` and in every snapshot sent to the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from hostpulse import catalog
from hostpulse.agent.collectors.base import Reading, Sample
from hostpulse.agent.delivery.spool import SpoolStats

DROP_REASONS = {"size": "dropped_size", "age": "dropped_age", "corrupt": "lost_corrupt"}


class LatencyTracker:
    """Duration of accepted sends: the last one, their sum and count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.last = 0.0
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.last = seconds
            self.total += seconds
            self.count += 1

    def read(self) -> tuple[float, float, int]:
        with self._lock:
            return self.last, self.total, self.count


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    queued: int
    sent: int
    retried: int
    rejected: int
    dropped_size: int
    dropped_age: int
    lost_corrupt: int
    spool_bytes: int
    spool_snapshots: int
    send_latency_seconds: float
    send_duration_seconds: float
    sends: int

    @property
    def dropped(self) -> int:
        return self.dropped_size + self.dropped_age + self.lost_corrupt

    @classmethod
    def from_spool(cls, spool: SpoolStats, latency: LatencyTracker) -> DeliveryStats:
        c = spool.counters
        last, total, count = latency.read()
        return cls(
            queued=c.get("queued", 0),
            sent=c.get("sent", 0),
            retried=c.get("retried", 0),
            rejected=c.get("rejected", 0),
            dropped_size=c.get("dropped_size", 0),
            dropped_age=c.get("dropped_age", 0),
            lost_corrupt=c.get("lost_corrupt", 0),
            spool_bytes=spool.bytes,
            spool_snapshots=spool.pending_records,
            send_latency_seconds=last,
            send_duration_seconds=total,
            sends=count,
        )

    def samples(self) -> list[Sample]:
        out = [
            Sample("agent_queued_snapshots", (), float(self.queued)),
            Sample("agent_sent_snapshots", (), float(self.sent)),
            Sample("agent_rejected_snapshots", (), float(self.rejected)),
            Sample("agent_send_retries", (), float(self.retried)),
            Sample("agent_spool_bytes", (), float(self.spool_bytes)),
            Sample("agent_spool_snapshots", (), float(self.spool_snapshots)),
            Sample("agent_send_duration_seconds", (), self.send_duration_seconds),
            Sample("agent_sends", (), float(self.sends)),
        ]
        out.extend(
            Sample("agent_dropped_snapshots", (("reason", reason),), float(getattr(self, attr)))
            for reason, attr in DROP_REASONS.items()
        )
        if self.sends:
            out.append(Sample("agent_send_latency_seconds", (), self.send_latency_seconds))
        return out


class AgentCollector:
    """The ``agent`` collector: the shipper's and spool's counters as samples; without a
    shipper (``stats`` None) its metrics are reported as unsupported."""

    name = "agent"

    def __init__(self, stats: Callable[[], DeliveryStats] | None) -> None:
        self._stats = stats

    def collect(self, now: float) -> Reading:
        if self._stats is None:  # not shipping (no --server): nothing to report
            return Reading(unsupported={m.key for m in catalog.for_collector(self.name)})
        return Reading(samples=self._stats().samples())
