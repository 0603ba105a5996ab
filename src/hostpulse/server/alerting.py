"""Connects the alert engine to the server: opens ``AlertService`` on the store's database and
feeds it every batch the store has acknowledged."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.alerts.claims import NotificationClaims
from hostpulse.alerts.config import AlertsConfig, load_config
from hostpulse.alerts.service import AlertService
from hostpulse.alerts.types import HostDirectory, Routed, Routes
from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.server.config import ServerSettings
from hostpulse.server.ingest import Listener

logger = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]


@contextlib.asynccontextmanager
async def running_alerts(
    settings: ServerSettings,
    engine: AsyncEngine,
    hosts: HostDirectory | None = None,
    *,
    owns: Callable[[str], bool] | None = None,
    claims: NotificationClaims | None = None,
) -> AsyncIterator[AlertService]:
    """The alert service with ``alerts.yml`` loaded (when configured) and its tasks running,
    stopped on exit. ``engine``: the process's database (``db.Database``), opened and closed by
    its owner; ``hosts``: the store (its host registry names hosts in notifications and answers).
    A bad ``alerts.yml`` raises ``hostpulse.alerts.exceptions.ConfigError`` naming the key."""
    config = (
        load_config(settings.alerts_config, os.environ)
        if settings.alerts_config is not None
        else AlertsConfig()
    )
    service = AlertService(engine, config, hosts=hosts, owns=owns, claims=claims)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def _host_labels(batch: HostBatch) -> dict[str, str]:
    labels = {label.name: label.value for label in batch.host.labels}
    labels.setdefault("hostname", batch.host.hostname)
    return labels


@dataclass(frozen=True, slots=True)
class _Table:
    """What the observer derives from one host's identity and series table."""

    signature: bytes
    watched: frozenset[str]  # the engine's watched metrics this was derived for
    host_labels: dict[str, str]
    wanted: list[tuple[int, Routes, Labels]]  # (position in the table, routes, labels)


def observer(service: AlertService) -> Listener:
    """An ingest listener: hands each acknowledged snapshot to the engine (cheap and
    synchronous; sends happen on the service's own tasks). Only the series of metrics some
    rule reads are passed (the engine ignores the others); which those are, and which rules
    each goes to (``AlertEngine.routes``), is worked out once per host series table (by its
    signature) and rule set, not per request. With ``service.owns`` (several replicas) only
    the batches of hosts this replica owns."""
    feed = batch_feed(service)
    owns = service.owns

    def observe(request: IngestRequest, signatures: Sequence[bytes]) -> None:
        for batch, signature in zip(request.batches, signatures, strict=True):
            if owns is None or owns(batch.host.host_id):
                feed(batch, signature)

    return observe


def batch_feed(service: AlertService) -> Callable[[HostBatch, bytes], None]:
    """Hands one acknowledged host batch (and its series-table signature) to the engine; the
    cluster uses it for batches ingested by other replicas."""
    tables: dict[str, _Table] = {}
    engine = service.engine

    def table_of(batch: HostBatch, host_id: str, signature: bytes) -> _Table:
        watched = engine.watched_metrics
        cached = tables.get(host_id)
        if cached is not None and cached.signature == signature and cached.watched is watched:
            return cached
        host_labels = _host_labels(batch)
        wanted = []
        for i, s in enumerate(batch.series):
            if s.metric in watched:
                routes = engine.routes(host_id, host_labels, s.metric)
                if routes:
                    wanted.append((i, routes, tuple((lb.name, lb.value) for lb in s.labels)))
        table = _Table(signature, watched, host_labels, wanted)
        tables[host_id] = table
        return table

    observe = engine.observe_routed

    def feed(batch: HostBatch, signature: bytes) -> None:
        host_id = batch.host.host_id  # (a protobuf field: read once, not per use)
        table = table_of(batch, host_id, signature)
        for snap in batch.snapshots:
            samples: list[Routed] = []
            if table.wanted:
                index, values = snap.series_index, snap.values
                n = len(index)
                by_series: dict[int, float] | None = None
                for i, routes, labels in table.wanted:
                    # An agent sends its series in table order (index[i] == i): the value is
                    # at the series' own position; a series appears at most once in a
                    # snapshot (validated), so that is its only value. Else the snapshot is
                    # mapped once (a dict of every series: 5x the cost of these look-ups).
                    if i < n and index[i] == i:
                        samples.append((routes, labels, values[i]))
                        continue
                    if by_series is None:
                        by_series = dict(zip(index, values, strict=True))
                    v = by_series.get(i)
                    if v is not None:
                        samples.append((routes, labels, v))
            observe(host_id, table.host_labels, snap.timestamp_ms, samples)

    return feed
