"""Simulated agent-like series for the store benchmarks: 150 series per host, shaped like what
the hostpulse agent sends (diurnal load plus noise, monotonic counters, constants, small
integer counts, rates computed from counters with full float precision)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hostpulse.catalog import CPU_MODES, PROCESS_STATES, TCP_STATES
from hostpulse.protocol import Host, HostBatch, Label, SeriesDef

F64 = npt.NDArray[np.float64]
DAY_MS = 86_400_000


def series_table() -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    s: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    s += [("cpu_usage_percent", (("mode", m),)) for m in CPU_MODES]
    s += [
        ("cpu_core_usage_percent", (("cpu", str(c)), ("mode", m)))
        for c in range(4)
        for m in CPU_MODES
    ]
    s += [("cpu_core_busy_percent", (("cpu", str(c)),)) for c in range(4)]
    s += [("cpu_busy_percent", ())]
    s += [(f"cpu_load{n}", ()) for n in (1, 5, 15)]
    s += [
        (k, ())
        for k in (
            "cpu_context_switches_per_second",
            "cpu_interrupts_per_second",
            "cpu_soft_interrupts_per_second",
            "cpu_logical_cores",
            "cpu_physical_cores",
            "cpu_frequency_hertz",
        )
    ]
    s += [
        (f"memory_{k}", ())
        for k in (
            "total_bytes",
            "used_bytes",
            "available_bytes",
            "free_bytes",
            "usage_percent",
            "buffers_bytes",
            "cached_bytes",
            "shared_bytes",
            "swap_total_bytes",
            "swap_used_bytes",
            "swap_free_bytes",
            "swap_usage_percent",
            "swap_in_bytes_per_second",
            "swap_out_bytes_per_second",
        )
    ]
    for dev, mp in (("/dev/sda1", "/"), ("/dev/sdb1", "/data")):
        lb = (("device", dev), ("mountpoint", mp))
        s += [
            (f"filesystem_{k}", lb)
            for k in (
                "size_bytes",
                "used_bytes",
                "free_bytes",
                "usage_percent",
                "inodes",
                "inodes_used",
                "inodes_usage_percent",
            )
        ]
    for dev in ("sda", "sdb"):
        lb = (("device", dev),)
        s += [
            (f"disk_{k}", lb)
            for k in (
                "read_bytes_per_second",
                "write_bytes_per_second",
                "reads_per_second",
                "writes_per_second",
                "await_seconds",
                "busy_percent",
                "queue_length",
                "read_bytes",
                "written_bytes",
            )
        ]
    for nic in ("eth0", "eth1"):
        lb = (("interface", nic),)
        s += [
            (f"network_{k}", lb)
            for k in (
                "receive_bytes_per_second",
                "transmit_bytes_per_second",
                "receive_packets_per_second",
                "transmit_packets_per_second",
                "receive_errors_per_second",
                "transmit_errors_per_second",
                "receive_drops_per_second",
                "transmit_drops_per_second",
                "speed_bytes_per_second",
                "utilization_percent",
                "receive_bytes",
                "transmit_bytes",
            )
        ]
    s += [("netstat_tcp_connections", (("state", st),)) for st in TCP_STATES]
    s += [("netstat_udp_sockets", ())]
    s += [("processes_count", (("state", st),)) for st in PROCESS_STATES]
    s += [("processes_all", ()), ("processes_threads", ()), ("system_boot_time_seconds", ())]
    s += [("system_uptime_seconds", ())]
    assert len(s) == 150, len(s)
    return s


def host_batch(host_id: str) -> HostBatch:
    """A HostBatch with the host and its series table and no snapshots."""
    b = HostBatch(host=Host(host_id=host_id, hostname=host_id, os="linux", interval_seconds=5))
    for metric, labels in series_table():
        b.series.append(
            SeriesDef(metric=metric, labels=[Label(name=n, value=v) for n, v in labels])
        )
    return b


def values(ts: npt.NDArray[np.int64], seed: int) -> F64:
    """``len(ts) x 150`` values for one host."""
    rnd = np.random.default_rng(seed)
    n = len(ts)
    table = series_table()
    out = np.empty((n, len(table)))
    day = np.sin((ts % DAY_MS) / DAY_MS * 2 * math.pi - math.pi / 2) * 0.5 + 0.5
    load = np.clip(0.15 + 0.5 * day * rnd.uniform(0.3, 1.0), 0, 1)
    dt = 5.0

    def walk(scale: float, start: float) -> F64:
        return start + np.cumsum(rnd.normal(0, scale, n))

    for j, (metric, labels) in enumerate(table):
        lb = dict(labels)
        if metric in ("cpu_usage_percent", "cpu_core_usage_percent"):
            share = {"user": 0.6, "system": 0.25, "iowait": 0.05, "nice": 0.01}.get(
                lb["mode"], 0.005
            )
            busy = np.clip(load * 100 * share + rnd.normal(0, 2 * share + 0.05, n), 0, 100)
            out[:, j] = busy if lb["mode"] != "idle" else 100 - load * 100 + rnd.normal(0, 1, n)
        elif metric in ("cpu_core_busy_percent", "cpu_busy_percent", "memory_usage_percent"):
            out[:, j] = np.clip(load * 100 + rnd.normal(0, 3, n), 0, 100)
        elif metric.startswith("cpu_load"):
            out[:, j] = np.round(np.abs(load * 4 + rnd.normal(0, 0.1, n)), 2)
        elif metric.endswith("_per_second") and ("errors" in metric or "drops" in metric):
            out[:, j] = np.where(rnd.random(n) < 0.002, rnd.integers(1, 5, n) / dt, 0.0)
        elif metric in ("cpu_logical_cores", "cpu_physical_cores"):
            out[:, j] = 8.0 if "logical" in metric else 4.0
        elif metric == "cpu_frequency_hertz":
            out[:, j] = np.where(load > 0.5, 3.6e9, 2.4e9)
        elif metric.endswith("bytes_per_second") or metric.endswith("per_second"):
            scale = 1e6 if "bytes" in metric else 1e3
            if metric.startswith("memory_swap"):
                scale = 10.0
            if metric.startswith("network_speed"):
                out[:, j] = 1.25e8
                continue
            counts = np.floor(np.abs(load * scale * rnd.lognormal(0, 0.5, n)))
            out[:, j] = counts / dt  # the agent's rate from two counter readings
        elif metric in ("disk_read_bytes", "disk_written_bytes") or metric.endswith("ve_bytes"):
            out[:, j] = 1e12 + np.cumsum(np.floor(load * 1e6 * rnd.lognormal(0, 0.5, n)) * 512)
        elif metric == "network_transmit_bytes":
            out[:, j] = 5e11 + np.cumsum(np.floor(load * 1e6 * rnd.lognormal(0, 0.5, n)))
        elif metric.endswith("usage_percent") or metric.endswith("_percent"):
            out[:, j] = np.clip(load * 60 + rnd.normal(0, 2, n), 0, 100)
        elif metric.endswith("_bytes") and ("total" in metric or "size" in metric):
            out[:, j] = 16 * 2**30 if "memory" in metric else 500 * 2**30
        elif metric.endswith("_bytes"):
            out[:, j] = np.floor(np.abs(walk(1.0, 1000.0))) * 4096
        elif metric == "disk_await_seconds":
            out[:, j] = np.round(np.abs(rnd.normal(0.004, 0.002, n)), 6)
        elif metric == "disk_queue_length":
            out[:, j] = np.round(np.abs(rnd.normal(0.5, 0.3, n)), 2)
        elif metric in ("filesystem_inodes",):
            out[:, j] = 32_000_000.0
        elif metric == "system_boot_time_seconds":
            out[:, j] = 1_766_000_000.0
        elif metric == "system_uptime_seconds":
            out[:, j] = ts / 1000.0 - 1_766_000_000.0
        else:  # counts: connections, processes, threads, inodes used
            base = {"processes_threads": 1200.0, "processes_all": 300.0}.get(metric, 20.0)
            out[:, j] = np.maximum(0.0, np.round(walk(0.3, base)))
    return out
