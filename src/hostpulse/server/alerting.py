"""Connects the alert engine to the server: opens ``AlertService`` on the store's database and
feeds it every batch the store has acknowledged."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable

from hostpulse.alerts.config import AlertsConfig, load_config
from hostpulse.alerts.service import AlertService
from hostpulse.alerts.types import Sample
from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.server.config import ServerSettings
from hostpulse.store.db import make_engine

logger = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]


@contextlib.asynccontextmanager
async def running_alerts(settings: ServerSettings, url: str) -> AsyncIterator[AlertService]:
    """The alert service with ``alerts.yml`` loaded (when configured) and its tasks running,
    stopped and its database connections closed on exit. ``url``: the store's database.
    A bad ``alerts.yml`` raises ``hostpulse.alerts.exceptions.ConfigError`` naming the key."""
    config = (
        load_config(settings.alerts_config, os.environ)
        if settings.alerts_config is not None
        else AlertsConfig()
    )
    engine = make_engine(url)
    try:
        service = AlertService(engine, config)
        await service.start()
        try:
            yield service
        finally:
            await service.stop()
    finally:
        await engine.dispose()


def _host_labels(batch: HostBatch) -> dict[str, str]:
    labels = {label.name: label.value for label in batch.host.labels}
    labels.setdefault("hostname", batch.host.hostname)
    return labels


def observer(service: AlertService) -> Callable[[IngestRequest], None]:
    """An ingest listener: hands each acknowledged snapshot to the engine (cheap and
    synchronous; sends happen on the service's own tasks)."""
    tables: dict[str, tuple[bytes, list[tuple[str, Labels]]]] = {}

    def series_of(batch: HostBatch) -> list[tuple[str, Labels]]:
        digest = b"".join(s.SerializeToString() for s in batch.series)
        cached = tables.get(batch.host.host_id)
        if cached is not None and cached[0] == digest:
            return cached[1]
        table = [(s.metric, tuple((lb.name, lb.value) for lb in s.labels)) for s in batch.series]
        tables[batch.host.host_id] = (digest, table)
        return table

    def observe(request: IngestRequest) -> None:
        for batch in request.batches:
            table = series_of(batch)
            labels = _host_labels(batch)
            host_id = batch.host.host_id
            for snap in batch.snapshots:
                samples: list[Sample] = [
                    (table[i][0], table[i][1], v)
                    for i, v in zip(snap.series_index, snap.values, strict=True)
                ]
                service.observe(host_id, labels, snap.timestamp_ms, samples)

    return observe
