"""Readings -> HostBatch (wire) and -> the --once JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from hostpulse import catalog
from hostpulse.agent.collectors.base import ProcessInfo, Reading, Sample, SystemInfo
from hostpulse.agent.snapshot import (
    BatchBuilder,
    HostIdentity,
    batch_to_json,
    build_batch,
    resolve_host_id,
)
from hostpulse.protocol import HostBatch

PROC = ProcessInfo(1, "init", "root", 1.5, 0.1, 4096, 1, "sleeping", "/sbin/init")


def readings() -> dict[str, Reading]:
    return {
        "system": Reading(
            samples=[Sample("system_uptime_seconds", (), 12.0)],
            system=SystemInfo("web1", "Debian 12", "6.1", "x86_64", "EPYC", 1700000000.0),
        ),
        "cpu": Reading(
            samples=[
                Sample("cpu_time_seconds", (("cpu", "0"), ("mode", "idle")), 10.5),
                Sample("cpu_logical_cores", (), 2.0),
            ],
            unsupported={"cpu_frequency_max_hertz"},
        ),
        "memory": Reading(samples=[Sample("memory_total_bytes", (), 1024.0)]),
        "processes": Reading(top_cpu=[PROC], top_memory=[PROC]),
    }


def build(platform: str = "linux") -> HostBatch:
    identity = HostIdentity("id-1", {"env": "prod"}, 5.0, platform)
    return build_batch(readings(), identity, timestamp_ms=1700000000123, sequence=7)


def test_batch_series_and_values_align() -> None:
    batch = build()
    snap = batch.snapshots[0]
    assert len(batch.snapshots) == 1
    assert list(snap.series_index) == list(range(len(batch.series)))
    got = {
        (batch.series[i].metric, tuple((lb.name, lb.value) for lb in batch.series[i].labels)): v
        for i, v in zip(snap.series_index, snap.values, strict=True)
    }
    # catalog collector order: cpu first, system last
    assert batch.series[0].metric == "cpu_time_seconds"
    assert got[("cpu_time_seconds", (("cpu", "0"), ("mode", "idle")))] == 10.5
    assert got[("system_uptime_seconds", ())] == 12.0
    assert snap.timestamp_ms == 1700000000123 and snap.sequence == 7


def test_batch_host_and_processes() -> None:
    batch = build()
    h = batch.host
    assert (h.host_id, h.hostname, h.os, h.kernel, h.arch) == (
        "id-1",
        "web1",
        "Debian 12",
        "6.1",
        "x86_64",
    )
    assert h.logical_cores == 2 and h.memory_bytes == 1024
    assert h.interval_seconds == 5.0
    assert [(lb.name, lb.value) for lb in h.labels] == [("env", "prod")]
    assert batch.snapshots[0].top_cpu[0].cmdline == "/sbin/init"
    assert batch.snapshots[0].top_memory[0].rss_bytes == 4096
    # round-trips over the wire
    assert HostBatch.FromString(batch.SerializeToString()) == batch


def test_unsupported_includes_platform_gaps() -> None:
    linux = build("linux")
    assert "cpu_frequency_max_hertz" in linux.unsupported
    assert "memory_buffers_bytes" not in linux.unsupported
    mac = build("darwin")
    linux_only = {m.key for m in catalog.METRICS if not m.supported_on("darwin")}
    assert linux_only <= set(mac.unsupported)
    assert "memory_buffers_bytes" in mac.unsupported


def test_json_document() -> None:
    doc = batch_to_json(build(), "linux")
    json.dumps(doc)  # serialisable
    assert list(doc) == ["timestamp", "timestamp_ms", "host", "metrics", "unsupported", "processes"]
    assert doc["timestamp"] == "2023-11-14T22:13:20.123+00:00"
    assert doc["host"]["labels"] == {"env": "prod"}
    entry = doc["metrics"][0]
    assert entry == {
        "name": "cpu_time_seconds",
        "prom_name": "node_cpu_time_seconds_total",
        "kind": "counter",
        "unit": "seconds",
        "labels": {"cpu": "0", "mode": "idle"},
        "value": 10.5,
    }
    reasons = {u["name"]: u["reason"] for u in doc["unsupported"]}
    assert reasons["cpu_frequency_max_hertz"] == "not provided by this linux host"
    assert doc["processes"]["top_cpu"][0] == {
        "pid": 1,
        "name": "init",
        "user": "root",
        "cpu_percent": 1.5,
        "mem_percent": 0.1,
        "rss_bytes": 4096,
        "threads": 1,
        "status": "sleeping",
        "cmdline": "/sbin/init",
    }
    mac = batch_to_json(build("darwin"), "darwin")
    reasons = {u["name"]: u["reason"] for u in mac["unsupported"]}
    assert reasons["memory_buffers_bytes"] == "not available on darwin (only on linux)"


def test_host_id_resolution(tmp_path: Path) -> None:
    machine_id = tmp_path / "machine-id"
    assert resolve_host_id("cfg", machine_id=machine_id) == "cfg"
    assert resolve_host_id(None, machine_id=machine_id, hostname=lambda: "box") == "box"
    machine_id.write_text("abc123\n")
    assert resolve_host_id(None, machine_id=machine_id, hostname=lambda: "box") == "abc123"
    machine_id.write_text("\n")
    assert resolve_host_id(None, machine_id=machine_id, hostname=lambda: "box") == "box"


def test_builder_follows_series_changes() -> None:
    builder = BatchBuilder(HostIdentity("id-1", platform="linux"))

    def net(*names: str) -> dict[str, Reading]:
        samples = [Sample("network_receive_bytes", (("interface", n),), 1.0) for n in names]
        return {"network": Reading(samples=samples)}

    first = builder.build(net("eth0"), timestamp_ms=1, sequence=1)
    same = builder.build(net("eth0"), timestamp_ms=2, sequence=2)
    grown = builder.build(net("eth0", "wg0"), timestamp_ms=3, sequence=3)
    assert first.series == same.series and len(first.series) == 1
    assert [s.labels[0].value for s in grown.series] == ["eth0", "wg0"]
    assert list(grown.snapshots[0].series_index) == [0, 1]
    assert len(first.series) == 1  # earlier batches are not changed by later ones


def test_builder_repeats_a_slow_collectors_reading_and_follows_its_next_one() -> None:
    """Processes are read every 15 s and their reading goes into the snapshots in between
    unchanged; the next reading (new values, new top lists) must show at once."""
    builder = BatchBuilder(HostIdentity("id-1", platform="linux"))
    slow = Reading(samples=[Sample("processes_all", (), 100.0)], top_cpu=[PROC], top_memory=[PROC])

    def tick(cpu: float, processes: Reading, sequence: int) -> HostBatch:
        fast = Reading(samples=[Sample("cpu_busy_percent", (), cpu)])
        return builder.build(
            {"cpu": fast, "processes": processes}, timestamp_ms=1, sequence=sequence
        )

    def values(batch: HostBatch) -> dict[str, float]:
        snap = batch.snapshots[0]
        return {
            batch.series[i].metric: v for i, v in zip(snap.series_index, snap.values, strict=True)
        }

    first = tick(10.0, slow, 1)
    again = tick(20.0, slow, 2)
    assert values(first) == {"cpu_busy_percent": 10.0, "processes_all": 100.0}
    assert values(again) == {"cpu_busy_percent": 20.0, "processes_all": 100.0}
    assert [p.name for p in again.snapshots[0].top_cpu] == ["init"]
    other = ProcessInfo(2, "sshd", "root", 3.0, 0.2, 8192, 1, "sleeping", "sshd")
    fresh = Reading(samples=[Sample("processes_all", (), 101.0)], top_cpu=[other], top_memory=[])
    third = tick(30.0, fresh, 3)
    assert values(third) == {"cpu_busy_percent": 30.0, "processes_all": 101.0}
    assert [p.name for p in third.snapshots[0].top_cpu] == ["sshd"]
    assert list(third.snapshots[0].top_memory) == []
    assert [p.name for p in again.snapshots[0].top_cpu] == ["init"]  # earlier batch unchanged
