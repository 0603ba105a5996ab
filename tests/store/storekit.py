"""Helpers for store tests: build ingest requests; a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

from hostpulse.protocol import Host, HostBatch, IngestRequest, Label, Process, SeriesDef

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a block boundary

SERIES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("cpu_busy_percent", ()),
    ("memory_used_bytes", ()),
    ("cpu_load1", ()),
    ("network_receive_bytes_per_second", (("interface", "eth0"),)),
    ("disk_await_seconds", (("device", "sda"),)),
)


class FakeClock:
    def __init__(self, now_ms: int = T0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def batch(
    host_id: str,
    rows: Sequence[tuple[int, Sequence[float]]],
    series: Sequence[tuple[str, tuple[tuple[str, str], ...]]] = SERIES,
    *,
    processes: bool = False,
) -> HostBatch:
    """A HostBatch with one snapshot per ``(timestamp, values)``; NaN values are left out."""
    b = HostBatch(
        host=Host(host_id=host_id, hostname=f"{host_id}.example", os="linux", interval_seconds=5)
    )
    for metric, labels in series:
        b.series.append(
            SeriesDef(metric=metric, labels=[Label(name=n, value=v) for n, v in labels])
        )
    for ts, values in rows:
        snap = b.snapshots.add(timestamp_ms=ts)
        for i, v in enumerate(values):
            if v == v:
                snap.series_index.append(i)
                snap.values.append(v)
        if processes:
            snap.top_cpu.append(
                Process(pid=ts % 1000, name="busy", user="root", cpu_percent=50.0, cmdline="x")
            )
            snap.top_memory.append(Process(pid=2, name="big", rss_bytes=ts, status="sleeping"))
    return b


def request(*batches: HostBatch) -> IngestRequest:
    return IngestRequest(batches=list(batches))
