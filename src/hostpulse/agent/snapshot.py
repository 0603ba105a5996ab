"""Turn the collectors' latest readings into the wire message and the JSON snapshot.

A snapshot carries the latest reading of every collector: the values of a slow collector (disk
usage every 30 s) repeat in the snapshots between two of its collections, so the newest
snapshot of a host is always complete. A batch built here holds one snapshot and its own series
table (``series_index`` is 0..n-1); a shipper may merge batches of one host.

JSON document (``hostpulse agent --once --format json``), keys in this order::

    timestamp       ISO 8601 UTC of the snapshot
    timestamp_ms    the same, milliseconds since the Unix epoch
    host            {host_id, hostname, os, kernel, arch, cpu_model, boot_time, logical_cores,
                     memory_bytes, labels, interval_seconds, agent_version}
    metrics         [{name (catalog key), prom_name, kind, unit, labels: {..}, value}], one per
                    series, in catalog order
    unsupported     [{name (catalog key), reason}] for catalog metrics this host cannot provide
    processes       {top_cpu: [..], top_memory: [..]} with the catalog's PROCESS_FIELDS
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from hostpulse import __version__, catalog
from hostpulse.agent.collectors.base import Labels, ProcessInfo, Reading
from hostpulse.protocol import Host, HostBatch, Label, Process, SeriesDef, Snapshot, varint


class SnapshotSink(Protocol):
    """Receives every finished snapshot. ``put`` must not block (queue or swap a reference)."""

    def put(self, batch: HostBatch) -> None: ...


def current_platform() -> str:
    if sys.platform.startswith("linux"):
        return catalog.Platform.LINUX.value
    if sys.platform == "darwin":
        return catalog.Platform.MACOS.value
    if sys.platform.startswith("win"):
        return catalog.Platform.WINDOWS.value
    return sys.platform


def resolve_host_id(
    configured: str | None,
    *,
    machine_id: Path = Path("/etc/machine-id"),
    hostname: Callable[[], str] = socket.gethostname,
) -> str:
    """The configured ``host_id``, else /etc/machine-id, else the hostname."""
    if configured:
        return configured
    try:
        text = machine_id.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return text or hostname()


@dataclass(frozen=True, slots=True)
class HostIdentity:
    host_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    interval_seconds: float = 5.0
    platform: str = field(default_factory=current_platform)


def _process(p: ProcessInfo) -> Process:
    return Process(
        pid=p.pid,
        name=p.name,
        user=p.user,
        cpu_percent=p.cpu_percent,
        mem_percent=p.mem_percent,
        rss_bytes=max(p.rss_bytes, 0),
        threads=max(p.threads, 0),
        status=p.status,
        cmdline=p.cmdline,
    )


class _Part:
    """What the batch takes from one reading, made once per reading: a slow collector's reading
    (processes every 15 s, disk usage every 30 s) goes into several snapshots unchanged."""

    __slots__ = ("reading", "scalars", "signature", "top_cpu", "top_memory", "values")

    def __init__(self, reading: Reading) -> None:
        samples = reading.samples
        self.reading = reading  # keeps the reading alive: its id() is the cache key
        self.signature = [(s.key, s.labels) for s in samples]
        self.values = [s.value for s in samples]
        self.scalars = {s.key: s.value for s in samples if not s.labels}
        self.top_cpu = None if reading.top_cpu is None else [_process(p) for p in reading.top_cpu]
        self.top_memory = (
            None if reading.top_memory is None else [_process(p) for p in reading.top_memory]
        )


class BatchBuilder:
    """Builds batches for one host; reuses the series table while the set of series is unchanged.

    Building ~200 ``SeriesDef`` messages from Python is most of the cost of a snapshot; from
    one snapshot to the next the table rarely changes, so it is copied from the last one. The
    samples of a reading that is repeated (a collector slower than the agent's interval) are
    taken apart once.
    """

    def __init__(self, identity: HostIdentity) -> None:
        self.identity = identity
        self._signature: list[tuple[str, Labels]] = []
        self._present: set[str] = set()
        self._template = HostBatch()
        self._parts: dict[int, _Part] = {}
        self._platform_gaps = {
            m.key for m in catalog.METRICS if not m.supported_on(identity.platform)
        }

    def _part(self, reading: Reading, parts: dict[int, _Part]) -> _Part:
        part = self._parts.get(id(reading))
        if part is None or part.reading is not reading:
            part = _Part(reading)
        parts[id(reading)] = part
        return part

    def build(
        self, readings: Mapping[str, Reading], *, timestamp_ms: int, sequence: int
    ) -> HostBatch:
        """One HostBatch with one snapshot from the latest reading of each collector."""
        identity = self.identity
        ordered = [readings[name] for name in catalog.COLLECTORS if name in readings]
        ordered += [r for name, r in readings.items() if name not in catalog.COLLECTORS]

        parts: dict[int, _Part] = {}
        signature: list[tuple[str, Labels]] = []
        values: list[float] = []
        unsupported = set(self._platform_gaps)
        system = None
        top_cpu: list[Process] = []
        top_memory: list[Process] = []
        scalars: dict[str, float] = {}
        for reading in ordered:
            part = self._part(reading, parts)
            unsupported |= reading.unsupported
            system = reading.system or system
            if part.top_cpu is not None:
                top_cpu = part.top_cpu
            if part.top_memory is not None:
                top_memory = part.top_memory
            signature += part.signature
            values += part.values
            scalars.update(part.scalars)
        self._parts = parts
        if signature != self._signature:
            self._signature = signature
            self._present = {key for key, _ in signature}
            self._template = HostBatch(
                series=[
                    SeriesDef(metric=key, labels=[Label(name=n, value=v) for n, v in labels])
                    for key, labels in signature
                ]
            )

        batch = HostBatch()
        batch.CopyFrom(self._template)
        batch.host.CopyFrom(
            Host(
                host_id=identity.host_id,
                hostname=system.hostname if system else socket.gethostname(),
                os=system.os if system else "",
                kernel=system.kernel if system else "",
                arch=system.arch if system else "",
                cpu_model=system.cpu_model if system else "",
                boot_time=system.boot_time if system else 0.0,
                logical_cores=int(scalars.get("cpu_logical_cores", 0)),
                memory_bytes=int(scalars.get("memory_total_bytes", 0)),
                labels=[Label(name=k, value=v) for k, v in sorted(identity.labels.items())],
                interval_seconds=identity.interval_seconds,
                agent_version=__version__,
            )
        )
        batch.snapshots.append(
            Snapshot(
                timestamp_ms=timestamp_ms,
                series_index=range(len(values)),
                values=values,
                top_cpu=top_cpu,
                top_memory=top_memory,
                sequence=sequence,
            )
        )
        batch.unsupported.extend(sorted(unsupported - self._present))
        return batch


_TABLE_FIELDS = (1, 2)  # HostBatch.host, HostBatch.series
_TABLE_TAGS = (b"\x0a", b"\x12")  # their tags (length-delimited)


def table_start(raw: bytes, previous: bytes = b"") -> bytes:
    """The bytes at the start of the serialized batch ``raw`` that are its host and series
    table (fields 1 and 2, which come first): ``previous`` itself when ``raw`` starts with it
    and no more of them follow (unchanged: one memcmp instead of comparing ~450 messages),
    else found anew."""
    n = len(previous)
    if n and raw.startswith(previous) and raw[n : n + 1] not in _TABLE_TAGS:
        return previous
    pos = 0
    try:
        while pos < len(raw):
            tag, at = varint.decode(raw, pos)
            if tag >> 3 not in _TABLE_FIELDS or tag & 7 != 2:
                break
            length, at = varint.decode(raw, at)
            if at + length > len(raw):
                break
            pos = at + length
    except (IndexError, varint.VarintError):  # a truncated varint: no table
        return b""
    return raw[:pos]


def build_batch(
    readings: Mapping[str, Reading],
    identity: HostIdentity,
    *,
    timestamp_ms: int,
    sequence: int,
) -> HostBatch:
    """One HostBatch with one snapshot from the latest reading of each collector."""
    return BatchBuilder(identity).build(readings, timestamp_ms=timestamp_ms, sequence=sequence)


def _process_json(p: Process) -> dict[str, Any]:
    return {f.name: getattr(p, f.name) for f in catalog.PROCESS_FIELDS}


def unsupported_reason(key: str, platform: str) -> str:
    metric = catalog.BY_KEY.get(key)
    if metric is not None and metric.collector == "agent":
        return "only while the agent ships to a server (--server)"
    if metric is not None and metric.collector == "containers" and metric.supported_on(platform):
        return "no container on this host has it (none found, or not in this cgroup setup)"
    if metric is not None and not metric.supported_on(platform):
        where = ", ".join(sorted(p.value for p in metric.platforms))
        return f"not available on {platform} (only on {where})"
    return f"not provided by this {platform} host"


def batch_to_json(batch: HostBatch, platform: str | None = None) -> dict[str, Any]:
    """The JSON document of the newest snapshot in ``batch`` (see the module docstring)."""
    platform = platform or current_platform()
    snap = batch.snapshots[-1]
    h = batch.host
    metrics: list[dict[str, Any]] = []
    for index, value in zip(snap.series_index, snap.values, strict=True):
        s = batch.series[index]
        m = catalog.BY_KEY.get(s.metric)
        metrics.append(
            {
                "name": s.metric,
                "prom_name": m.prom_name if m else s.metric.removeprefix("custom:"),
                "kind": m.kind.value if m else "gauge",
                "unit": m.unit if m else "",
                "labels": {lb.name: lb.value for lb in s.labels},
                "value": value,
            }
        )
    order = {m.key: i for i, m in enumerate(catalog.METRICS)}
    metrics.sort(key=lambda e: order.get(e["name"], len(order)))
    return {
        "timestamp": datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC).isoformat(
            timespec="milliseconds"
        ),
        "timestamp_ms": snap.timestamp_ms,
        "host": {
            "host_id": h.host_id,
            "hostname": h.hostname,
            "os": h.os,
            "kernel": h.kernel,
            "arch": h.arch,
            "cpu_model": h.cpu_model,
            "boot_time": h.boot_time,
            "logical_cores": h.logical_cores,
            "memory_bytes": h.memory_bytes,
            "labels": {lb.name: lb.value for lb in h.labels},
            "interval_seconds": h.interval_seconds,
            "agent_version": h.agent_version,
        },
        "metrics": metrics,
        "unsupported": [
            {"name": k, "reason": unsupported_reason(k, platform)} for k in batch.unsupported
        ],
        "processes": {
            "top_cpu": [_process_json(p) for p in snap.top_cpu],
            "top_memory": [_process_json(p) for p in snap.top_memory],
        },
    }
