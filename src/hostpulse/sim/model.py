"""Realistic fake hosts: varied hardware, a diurnal load curve, load spikes, disks that fill up,
counters that only grow. Values for many timestamps are computed at once with numpy, so the
simulator can back-fill days of data quickly and the benchmarks can pre-generate their load.

A simulated host sends about 150 series (4 cores, 2 filesystems, 2 disks, 2 interfaces); it
leaves out the per-core-per-mode series (``cpu_time_seconds``, ``cpu_core_usage_percent``) that
a real agent also sends, so the count does not explode with the core count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hostpulse import catalog

Labels = tuple[tuple[str, str], ...]
Series = tuple[str, Labels]
F = NDArray[np.float64]

GIB = 1024**3
DAY_S = 86400.0
_MODES_SHARE = {  # share of busy time per mode (idle and iowait computed apart)
    "user": 0.62,
    "nice": 0.02,
    "system": 0.26,
    "irq": 0.02,
    "softirq": 0.05,
    "steal": 0.03,
}
_PROC_NAMES = ("postgres", "nginx", "python3", "java", "node", "redis-server", "sshd", "systemd")


@dataclass(frozen=True, slots=True)
class Profile:
    """The hardware and habits of one simulated host."""

    index: int
    cores: int
    memory_bytes: int
    filesystems: tuple[tuple[str, str, int], ...]  # (device, mountpoint, size bytes)
    devices: tuple[str, ...]
    interfaces: tuple[tuple[str, float], ...]  # (name, link speed bytes/s)
    base_load: float  # 0..1 share of the CPU at night
    peak_load: float  # added at the daily peak
    peak_hour: float
    spike_chance: float  # per 10-minute window
    fill_per_day: float  # share of the root filesystem written per day
    boot_time: float


def make_profile(index: int, seed: int = 0) -> Profile:
    rng = np.random.default_rng([seed, index])
    cores = int(rng.choice([2, 4, 4, 8, 8, 16, 32]))
    mem = int(rng.choice([4, 8, 16, 32, 64, 128])) * GIB
    n_fs = int(rng.choice([1, 2, 2, 3]))
    disks = tuple(f"sd{chr(97 + i)}" if i < 2 else f"nvme{i - 2}n1" for i in range(n_fs))
    mounts = ("/", "/var", "/data")
    fss = tuple(
        (f"/dev/{disks[i]}1", mounts[i], int(rng.choice([50, 100, 250, 500, 1000])) * GIB)
        for i in range(n_fs)
    )
    n_if = int(rng.choice([1, 2, 2, 3]))
    ifaces = tuple(
        (name, float(rng.choice([125e6, 1.25e9, 1.25e9])))
        for name in ("eth0", "eth1", "bond0")[:n_if]
    )
    return Profile(
        index=index,
        cores=cores,
        memory_bytes=mem,
        filesystems=fss,
        devices=disks,
        interfaces=ifaces,
        base_load=float(rng.uniform(0.03, 0.2)),
        peak_load=float(rng.uniform(0.1, 0.6)),
        peak_hour=float(rng.uniform(10, 20)),
        spike_chance=float(rng.uniform(0.02, 0.1)),
        fill_per_day=float(rng.choice([0.0, 0.002, 0.01, 0.05])),
        boot_time=float(1.79e9 - rng.uniform(0, 60 * DAY_S)),
    )


def _series_for(p: Profile) -> list[Series]:
    out: list[Series] = []
    for m in catalog.METRICS:
        if m.key in ("cpu_time_seconds", "cpu_core_usage_percent", "system_info"):
            continue
        if not m.labels:
            out.append((m.key, ()))
        elif m.labels == ("mode",):
            out += [(m.key, (("mode", md),)) for md in catalog.CPU_MODES]
        elif m.labels == ("cpu",):
            out += [(m.key, (("cpu", str(c)),)) for c in range(p.cores)]
        elif m.labels == ("device", "mountpoint"):
            out += [(m.key, (("device", d), ("mountpoint", mp))) for d, mp, _ in p.filesystems]
        elif m.labels == ("device",):
            out += [(m.key, (("device", d),)) for d in p.devices]
        elif m.labels == ("interface",):
            out += [(m.key, (("interface", i),)) for i, _ in p.interfaces]
        elif m.labels == ("state",) and m.subsystem == "netstat":
            out += [(m.key, (("state", s),)) for s in catalog.TCP_STATES]
        elif m.labels == ("state",):
            out += [(m.key, (("state", s),)) for s in catalog.PROCESS_STATES]
    return out


def _spike(t: F, p: Profile) -> F:
    """1.0 during the spikes of this host (a few minutes inside some 10-minute windows)."""
    window = np.floor(t / 600.0)
    h = np.mod(window * 2654435761.0 + p.index * 40503.0, 4294967296.0) / 4294967296.0
    offset = np.mod(t, 600.0)
    return np.where((h < p.spike_chance) & (offset < 120 + 300 * h / p.spike_chance), 1.0, 0.0)


@dataclass(slots=True)
class SimHost:
    """One fake host. ``block(ts_ms)`` gives its values at increasing timestamps, one row per
    timestamp and one column per entry of ``series``; counters carry over between calls."""

    profile: Profile
    seed: int = 0
    series: list[Series] = field(init=False)
    _col: dict[Series, int] = field(init=False)
    _counters: dict[Series, float] = field(init=False)
    _last_t: float | None = field(init=False, default=None)
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.series = _series_for(self.profile)
        self._col = {s: i for i, s in enumerate(self.series)}
        self._counters = {}
        self._rng = np.random.default_rng([self.seed, self.profile.index, 1])

    @property
    def host_id(self) -> str:
        return f"sim-{self.profile.index:05d}"

    def load(self, t: F) -> F:
        p = self.profile
        hour = np.mod(t, DAY_S) / 3600.0
        diurnal = 0.5 - 0.5 * np.cos(2 * math.pi * (hour - p.peak_hour + 12) / 24.0)
        noise = self._rng.normal(0.0, 0.03, t.shape)
        spike = _spike(t, p) * 0.45
        return np.clip(p.base_load + p.peak_load * diurnal + spike + noise, 0.0, 1.0)

    def block(self, ts_ms: NDArray[np.int64]) -> F:
        p = self.profile
        t = ts_ms.astype(np.float64) / 1000.0
        n = len(t)
        prev = self._last_t if self._last_t is not None else float(t[0]) - 5.0
        dt = np.diff(t, prepend=prev).clip(min=1e-3)
        self._last_t = float(t[-1])
        out = np.zeros((n, len(self.series)))
        rng = self._rng

        def put(key: str, value: F | float, labels: Labels = ()) -> None:
            col = self._col.get((key, labels))
            if col is not None:
                out[:, col] = value

        def counter(key: str, rate: F, labels: Labels = ()) -> None:
            s = (key, labels)
            start = self._counters.get(s)
            if start is None:  # as if the rate had held since boot
                start = float(np.floor(float(rate[0]) * max(0.0, float(t[0]) - p.boot_time)))
            values = start + np.cumsum(rate * dt)
            self._counters[s] = float(values[-1])
            put(key, np.floor(values), labels)
            put(f"{key}_per_second", rate, labels)

        load = self.load(t)
        busy = load * 100.0
        iowait = np.clip(2.0 + 8.0 * load + rng.normal(0, 0.5, n), 0, None)
        for mode, share in _MODES_SHARE.items():
            put("cpu_usage_percent", busy * share, (("mode", mode),))
        put("cpu_usage_percent", iowait, (("mode", "iowait"),))
        put("cpu_usage_percent", np.clip(100.0 - busy - iowait, 0, 100), (("mode", "idle"),))
        put("cpu_busy_percent", busy)
        for c in range(p.cores):
            core = np.clip(
                busy * (0.6 + 0.8 * ((c * 7919) % 10) / 10) + rng.normal(0, 3, n), 0, 100
            )
            put("cpu_core_busy_percent", core, (("cpu", str(c)),))
        put("cpu_load1", load * p.cores * 1.1)
        put("cpu_load5", (0.6 * load + 0.4 * float(np.mean(load))) * p.cores)
        put("cpu_load15", float(np.mean(load)) * p.cores)
        counter("cpu_context_switches", 2000 + 40000 * load)
        counter("cpu_interrupts", 1000 + 20000 * load)
        counter("cpu_soft_interrupts", 800 + 12000 * load)
        put("cpu_logical_cores", p.cores)
        put("cpu_physical_cores", max(1, p.cores // 2))
        put("cpu_frequency_hertz", 1.8e9 + 1.4e9 * load)
        put("cpu_frequency_max_hertz", 3.6e9)

        total = float(p.memory_bytes)
        leak = np.mod(t, 3 * DAY_S) / (3 * DAY_S) * 0.15  # a slow leak, restarted every 3 days
        used = total * np.clip(0.25 + 0.3 * load + leak, 0, 0.97)
        put("memory_total_bytes", total)
        put("memory_used_bytes", used)
        put("memory_available_bytes", total - used)
        put("memory_free_bytes", (total - used) * 0.3)
        put("memory_cached_bytes", (total - used) * 0.6)
        put("memory_buffers_bytes", total * 0.02)
        put("memory_shared_bytes", total * 0.01)
        put("memory_usage_percent", used / total * 100)
        swap = 2.0 * GIB
        swap_used = swap * np.clip(0.02 + 0.1 * leak / 0.15, 0, 1)
        put("memory_swap_total_bytes", swap)
        put("memory_swap_used_bytes", swap_used)
        put("memory_swap_free_bytes", swap - swap_used)
        put("memory_swap_usage_percent", swap_used / swap * 100)
        counter("memory_swap_in_bytes", 4096 * load * 2)
        counter("memory_swap_out_bytes", 4096 * load * 3)

        days_up = (t - p.boot_time) / DAY_S
        for i, (dev, mp, size) in enumerate(p.filesystems):
            lab: Labels = (("device", dev), ("mountpoint", mp))
            fill = p.fill_per_day if i == 0 else p.fill_per_day / 4
            fs_share = np.clip(0.3 + 0.05 * i + fill * np.mod(days_up, 60.0), 0, 0.995)
            fused = np.floor(size * fs_share)
            put("filesystem_size_bytes", float(size), lab)
            put("filesystem_used_bytes", fused, lab)
            put("filesystem_free_bytes", size - fused, lab)
            put("filesystem_usage_percent", fs_share * 100, lab)
            inodes = float(size // 16384)
            put("filesystem_inodes", inodes, lab)
            put("filesystem_inodes_used", np.floor(inodes * fs_share * 0.4), lab)
            put("filesystem_inodes_usage_percent", fs_share * 40, lab)
        for i, dev in enumerate(p.devices):
            lab = (("device", dev),)
            scale = 1.0 / (i + 1)
            rd = 2e6 * scale * (0.2 + load) * rng.uniform(0.7, 1.3, n)
            wr = 5e6 * scale * (0.2 + load) * rng.uniform(0.7, 1.3, n)
            counter("disk_read_bytes", rd, lab)
            counter("disk_written_bytes", wr, lab)
            put("disk_read_bytes_per_second", rd, lab)
            put("disk_write_bytes_per_second", wr, lab)
            counter("disk_reads_completed", rd / 16384, lab)
            counter("disk_writes_completed", wr / 32768, lab)
            put("disk_reads_per_second", rd / 16384, lab)
            put("disk_writes_per_second", wr / 32768, lab)
            busy_share = np.clip(0.05 + 0.6 * load * scale, 0, 1)
            counter("disk_read_time_seconds", busy_share * 0.4, lab)
            counter("disk_write_time_seconds", busy_share * 0.6, lab)
            counter("disk_io_time_seconds", busy_share, lab)
            counter("disk_io_time_weighted_seconds", busy_share * 1.5, lab)
            put("disk_await_seconds", 0.002 + 0.02 * load * load, lab)
            put("disk_busy_percent", busy_share * 100, lab)
            put("disk_queue_length", busy_share * 1.5, lab)
        for i, (name, speed) in enumerate(p.interfaces):
            lab = (("interface", name),)
            scale = 1.0 / (i + 1)
            rx = speed * 0.2 * scale * (0.05 + load) * rng.uniform(0.8, 1.2, n)
            tx = speed * 0.1 * scale * (0.05 + load) * rng.uniform(0.8, 1.2, n)
            counter("network_receive_bytes", rx, lab)
            counter("network_transmit_bytes", tx, lab)
            counter("network_receive_packets", rx / 900, lab)
            counter("network_transmit_packets", tx / 700, lab)
            counter("network_receive_errors", np.zeros(n), lab)
            counter("network_transmit_errors", np.zeros(n), lab)
            counter("network_receive_drops", np.where(load > 0.9, 3.0, 0.0), lab)
            counter("network_transmit_drops", np.zeros(n), lab)
            put("network_speed_bytes_per_second", speed, lab)
            put("network_utilization_percent", np.maximum(rx, tx) / speed * 100, lab)

        tcp: dict[str, F | float] = {
            "established": 40 + 600 * load,
            "time_wait": 10 + 300 * load,
            "listen": 12.0,
        }
        for st in catalog.TCP_STATES:
            value: F | float = tcp.get(st, np.floor(load * 3))
            put("netstat_tcp_connections", np.floor(value), (("state", st),))
        put("netstat_udp_sockets", 9.0)
        running = np.floor(1 + p.cores * load)
        procs: dict[str, F | float] = {
            "running": running,
            "sleeping": 180 + 40 * load,
            "idle": 60.0,
        }
        for st in catalog.PROCESS_STATES:
            put("processes_count", np.floor(procs.get(st, 0.0)), (("state", st),))
        put("processes_all", np.floor(running + 240 + 40 * load))
        put("processes_threads", np.floor(600 + 900 * load))
        put("system_boot_time_seconds", p.boot_time)
        put("system_uptime_seconds", np.clip(t - p.boot_time, 0, None))
        return out

    def top_processes(self, load: float, n: int = 5) -> list[tuple[int, str, float, float, int]]:
        """(pid, name, cpu %, mem %, rss) of the busiest processes, by CPU."""
        p = self.profile
        rows = []
        for k, name in enumerate(_PROC_NAMES):
            weight = 1.0 / (k + 1)
            cpu = 100.0 * p.cores * load * weight * 0.5
            mem = 30.0 * weight
            rows.append((1000 + 37 * k, name, cpu, mem, int(p.memory_bytes * mem / 100)))
        return rows[:n]
