"""Builders of wire messages for the server tests."""

from __future__ import annotations

import time

from hostpulse.protocol import Host, HostBatch, IngestRequest, Label, SeriesDef

Labels = tuple[tuple[str, str], ...]


def now_ms() -> int:
    return int(time.time() * 1000)


def batch(
    host_id: str,
    snapshots: list[tuple[int, dict[tuple[str, Labels], float]]],
    interval: float = 5.0,
) -> HostBatch:
    """A host batch from ``[(ts_ms, {(metric, labels): value})]``."""
    keys: list[tuple[str, Labels]] = []
    for _, values in snapshots:
        for k in values:
            if k not in keys:
                keys.append(k)
    hb = HostBatch(
        host=Host(
            host_id=host_id,
            hostname=f"{host_id}.example",
            os="Linux",
            kernel="6.1.0",
            arch="x86_64",
            cpu_model="Test CPU",
            logical_cores=4,
            memory_bytes=8 << 30,
            interval_seconds=interval,
            labels=[Label(name="env", value="test")],
        ),
        series=[
            SeriesDef(metric=m, labels=[Label(name=n, value=v) for n, v in lab]) for m, lab in keys
        ],
    )
    for ts, values in snapshots:
        snap = hb.snapshots.add(timestamp_ms=ts)
        for k, v in values.items():
            snap.series_index.append(keys.index(k))
            snap.values.append(v)
    return hb


def request(*batches: HostBatch) -> IngestRequest:
    return IngestRequest(batches=list(batches))
