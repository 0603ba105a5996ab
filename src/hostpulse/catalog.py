"""Every metric hostpulse knows, declared exactly once.

The exporter names, the JSON snapshot, the wire contract, the API docs and the dashboard labels
all read name, unit, kind and labels from here. A series on the wire is identified by a
catalog ``key`` plus its label values.

Naming: ``key = <subsystem>_<name>[_<unit>]``; the Prometheus name is ``node_<key>`` with
``_total`` appended for counters (``node_disk_read_bytes_total``). The ``container`` subsystem
uses cAdvisor's names instead, without the ``node_`` prefix
(``container_cpu_usage_seconds_total``), so existing dashboards and queries work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"  # value is always 1; the information is in the labels


class Platform(StrEnum):
    LINUX = "linux"
    MACOS = "darwin"
    WINDOWS = "windows"


ALL: frozenset[Platform] = frozenset(Platform)
LINUX: frozenset[Platform] = frozenset({Platform.LINUX})
POSIX: frozenset[Platform] = frozenset({Platform.LINUX, Platform.MACOS})
NOT_MACOS: frozenset[Platform] = frozenset({Platform.LINUX, Platform.WINDOWS})


@dataclass(frozen=True, slots=True)
class Metric:
    subsystem: str
    name: str
    unit: str
    kind: Kind
    help: str
    collector: str
    labels: tuple[str, ...] = ()
    platforms: frozenset[Platform] = ALL
    rate_of: str | None = None
    """For a gauge computed from consecutive readings of a counter: that counter's key."""
    prom_prefix: str = "node_"

    @property
    def key(self) -> str:
        parts = [self.subsystem, self.name] + ([self.unit] if self.unit else [])
        return "_".join(parts)

    @property
    def prom_name(self) -> str:
        suffix = "_total" if self.kind is Kind.COUNTER else ""
        return f"{self.prom_prefix}{self.key}{suffix}"

    @property
    def is_rate(self) -> bool:
        return self.rate_of is not None

    def supported_on(self, platform: str) -> bool:
        return platform in self.platforms


G, C, I = Kind.GAUGE, Kind.COUNTER, Kind.INFO  # noqa: E741

CPU_MODES: tuple[str, ...] = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
)
PROCESS_STATES: tuple[str, ...] = (
    "running",
    "sleeping",
    "disk-sleep",
    "stopped",
    "tracing-stop",
    "zombie",
    "dead",
    "idle",
    "parked",
    "other",
)
TCP_STATES: tuple[str, ...] = (
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
)


def _m(
    subsystem: str,
    name: str,
    unit: str,
    kind: Kind,
    help: str,
    collector: str,
    labels: tuple[str, ...] = (),
    platforms: frozenset[Platform] = ALL,
    rate_of: str | None = None,
) -> Metric:
    return Metric(subsystem, name, unit, kind, help, collector, labels, platforms, rate_of)


CONTAINER_LABELS: tuple[str, ...] = ("id", "name", "image", "runtime")
"""``id``: the short container ID (12 hex digits) or the systemd unit; ``name`` and ``image``
from the Docker or Podman API when it answers (else the ID and ""); ``runtime``: docker,
podman, containerd, crio or systemd."""


def _c(
    name: str,
    unit: str,
    kind: Kind,
    help: str,
    labels: tuple[str, ...] = (),
    rate_of: str | None = None,
) -> Metric:
    """A ``container`` metric: per container (cgroup), Linux only, cAdvisor's name."""
    return Metric(
        "container",
        name,
        unit,
        kind,
        help,
        "containers",
        CONTAINER_LABELS + labels,
        LINUX,
        rate_of,
        prom_prefix="",
    )


METRICS: tuple[Metric, ...] = (
    # --- cpu -------------------------------------------------------------------------------
    _m("cpu", "time", "seconds", C, "CPU time spent per core and mode.", "cpu", ("cpu", "mode")),
    _m(
        "cpu",
        "usage",
        "percent",
        G,
        "Share of all cores' time spent per mode.",
        "cpu",
        ("mode",),
        rate_of="cpu_time_seconds",
    ),
    _m(
        "cpu",
        "busy",
        "percent",
        G,
        "Whole-machine CPU utilisation (100 - idle - iowait).",
        "cpu",
        rate_of="cpu_time_seconds",
    ),
    _m(
        "cpu",
        "core_usage",
        "percent",
        G,
        "Share of one core's time spent per mode.",
        "cpu",
        ("cpu", "mode"),
        rate_of="cpu_time_seconds",
    ),
    _m(
        "cpu",
        "core_busy",
        "percent",
        G,
        "Utilisation of one core (100 - idle - iowait).",
        "cpu",
        ("cpu",),
        rate_of="cpu_time_seconds",
    ),
    _m("cpu", "load1", "", G, "Load average over 1 minute.", "cpu"),
    _m("cpu", "load5", "", G, "Load average over 5 minutes.", "cpu"),
    _m("cpu", "load15", "", G, "Load average over 15 minutes.", "cpu"),
    _m("cpu", "context_switches", "", C, "Context switches since boot.", "cpu"),
    _m(
        "cpu",
        "context_switches",
        "per_second",
        G,
        "Context switches per second.",
        "cpu",
        rate_of="cpu_context_switches",
    ),
    _m("cpu", "interrupts", "", C, "Hardware interrupts since boot.", "cpu"),
    _m(
        "cpu",
        "interrupts",
        "per_second",
        G,
        "Hardware interrupts per second.",
        "cpu",
        rate_of="cpu_interrupts",
    ),
    _m("cpu", "soft_interrupts", "", C, "Software interrupts since boot.", "cpu", (), NOT_MACOS),
    _m(
        "cpu",
        "soft_interrupts",
        "per_second",
        G,
        "Software interrupts per second.",
        "cpu",
        platforms=NOT_MACOS,
        rate_of="cpu_soft_interrupts",
    ),
    _m("cpu", "logical_cores", "", G, "Number of logical CPUs.", "cpu"),
    _m("cpu", "physical_cores", "", G, "Number of physical cores.", "cpu"),
    _m("cpu", "frequency", "hertz", G, "Current CPU frequency (average over cores).", "cpu"),
    _m("cpu", "frequency_max", "hertz", G, "Maximum CPU frequency.", "cpu"),
    # --- memory ----------------------------------------------------------------------------
    _m("memory", "total", "bytes", G, "Physical memory.", "memory"),
    _m("memory", "used", "bytes", G, "Memory in use (total - available).", "memory"),
    _m(
        "memory",
        "available",
        "bytes",
        G,
        "Memory available to new processes without swapping.",
        "memory",
    ),
    _m("memory", "free", "bytes", G, "Memory not used at all.", "memory"),
    _m("memory", "usage", "percent", G, "Memory in use, percent of total.", "memory"),
    _m("memory", "buffers", "bytes", G, "Memory used by kernel buffers.", "memory", (), LINUX),
    _m("memory", "cached", "bytes", G, "Memory used by the page cache.", "memory", (), LINUX),
    _m(
        "memory",
        "shared",
        "bytes",
        G,
        "Memory shared between processes (tmpfs).",
        "memory",
        (),
        LINUX,
    ),
    _m("memory", "swap_total", "bytes", G, "Swap space.", "memory"),
    _m("memory", "swap_used", "bytes", G, "Swap in use.", "memory"),
    _m("memory", "swap_free", "bytes", G, "Swap not in use.", "memory"),
    _m("memory", "swap_usage", "percent", G, "Swap in use, percent of total.", "memory"),
    _m(
        "memory",
        "swap_in",
        "bytes",
        C,
        "Bytes swapped in from disk since boot.",
        "memory",
        (),
        POSIX,
    ),
    _m(
        "memory",
        "swap_out",
        "bytes",
        C,
        "Bytes swapped out to disk since boot.",
        "memory",
        (),
        POSIX,
    ),
    _m(
        "memory",
        "swap_in",
        "bytes_per_second",
        G,
        "Bytes swapped in per second.",
        "memory",
        platforms=POSIX,
        rate_of="memory_swap_in_bytes",
    ),
    _m(
        "memory",
        "swap_out",
        "bytes_per_second",
        G,
        "Bytes swapped out per second.",
        "memory",
        platforms=POSIX,
        rate_of="memory_swap_out_bytes",
    ),
    # --- filesystems (slow: disk_usage collector) -------------------------------------------
    _m(
        "filesystem",
        "size",
        "bytes",
        G,
        "Size of the filesystem.",
        "disk_usage",
        ("device", "mountpoint"),
    ),
    _m("filesystem", "used", "bytes", G, "Space in use.", "disk_usage", ("device", "mountpoint")),
    _m(
        "filesystem",
        "free",
        "bytes",
        G,
        "Space available to unprivileged users.",
        "disk_usage",
        ("device", "mountpoint"),
    ),
    _m(
        "filesystem",
        "usage",
        "percent",
        G,
        "Space in use, percent of the usable size.",
        "disk_usage",
        ("device", "mountpoint"),
    ),
    _m(
        "filesystem",
        "inodes",
        "",
        G,
        "Inodes on the filesystem.",
        "disk_usage",
        ("device", "mountpoint"),
        POSIX,
    ),
    _m(
        "filesystem",
        "inodes_used",
        "",
        G,
        "Inodes in use.",
        "disk_usage",
        ("device", "mountpoint"),
        POSIX,
    ),
    _m(
        "filesystem",
        "inodes_usage",
        "percent",
        G,
        "Inodes in use, percent of total.",
        "disk_usage",
        ("device", "mountpoint"),
        POSIX,
    ),
    # --- block devices (disk_io collector) --------------------------------------------------
    _m("disk", "read", "bytes", C, "Bytes read from the device.", "disk_io", ("device",)),
    _m("disk", "written", "bytes", C, "Bytes written to the device.", "disk_io", ("device",)),
    _m("disk", "reads_completed", "", C, "Read operations completed.", "disk_io", ("device",)),
    _m("disk", "writes_completed", "", C, "Write operations completed.", "disk_io", ("device",)),
    _m("disk", "read_time", "seconds", C, "Time spent on reads.", "disk_io", ("device",), POSIX),
    _m("disk", "write_time", "seconds", C, "Time spent on writes.", "disk_io", ("device",), POSIX),
    _m(
        "disk",
        "io_time",
        "seconds",
        C,
        "Time the device had I/O in progress.",
        "disk_io",
        ("device",),
        LINUX,
    ),
    _m(
        "disk",
        "io_time_weighted",
        "seconds",
        C,
        "I/O time weighted by requests in flight.",
        "disk_io",
        ("device",),
        LINUX,
    ),
    _m(
        "disk",
        "read",
        "bytes_per_second",
        G,
        "Bytes read per second.",
        "disk_io",
        ("device",),
        rate_of="disk_read_bytes",
    ),
    _m(
        "disk",
        "write",
        "bytes_per_second",
        G,
        "Bytes written per second.",
        "disk_io",
        ("device",),
        rate_of="disk_written_bytes",
    ),
    _m(
        "disk",
        "reads",
        "per_second",
        G,
        "Read operations per second (IOPS).",
        "disk_io",
        ("device",),
        rate_of="disk_reads_completed",
    ),
    _m(
        "disk",
        "writes",
        "per_second",
        G,
        "Write operations per second (IOPS).",
        "disk_io",
        ("device",),
        rate_of="disk_writes_completed",
    ),
    _m(
        "disk",
        "await",
        "seconds",
        G,
        "Average time per completed I/O (wait + service).",
        "disk_io",
        ("device",),
        POSIX,
        rate_of="disk_read_time_seconds",
    ),
    _m(
        "disk",
        "busy",
        "percent",
        G,
        "Share of time the device had I/O in progress.",
        "disk_io",
        ("device",),
        LINUX,
        rate_of="disk_io_time_seconds",
    ),
    _m(
        "disk",
        "queue_length",
        "",
        G,
        "Average number of requests in flight.",
        "disk_io",
        ("device",),
        LINUX,
        rate_of="disk_io_time_weighted_seconds",
    ),
    # --- network interfaces ----------------------------------------------------------------
    _m("network", "receive", "bytes", C, "Bytes received.", "network", ("interface",)),
    _m("network", "transmit", "bytes", C, "Bytes sent.", "network", ("interface",)),
    _m("network", "receive_packets", "", C, "Packets received.", "network", ("interface",)),
    _m("network", "transmit_packets", "", C, "Packets sent.", "network", ("interface",)),
    _m("network", "receive_errors", "", C, "Receive errors.", "network", ("interface",)),
    _m("network", "transmit_errors", "", C, "Transmit errors.", "network", ("interface",)),
    _m("network", "receive_drops", "", C, "Incoming packets dropped.", "network", ("interface",)),
    _m("network", "transmit_drops", "", C, "Outgoing packets dropped.", "network", ("interface",)),
    _m(
        "network",
        "receive",
        "bytes_per_second",
        G,
        "Bytes received per second.",
        "network",
        ("interface",),
        rate_of="network_receive_bytes",
    ),
    _m(
        "network",
        "transmit",
        "bytes_per_second",
        G,
        "Bytes sent per second.",
        "network",
        ("interface",),
        rate_of="network_transmit_bytes",
    ),
    _m(
        "network",
        "receive_packets",
        "per_second",
        G,
        "Packets received per second.",
        "network",
        ("interface",),
        rate_of="network_receive_packets",
    ),
    _m(
        "network",
        "transmit_packets",
        "per_second",
        G,
        "Packets sent per second.",
        "network",
        ("interface",),
        rate_of="network_transmit_packets",
    ),
    _m(
        "network",
        "receive_errors",
        "per_second",
        G,
        "Receive errors per second.",
        "network",
        ("interface",),
        rate_of="network_receive_errors",
    ),
    _m(
        "network",
        "transmit_errors",
        "per_second",
        G,
        "Transmit errors per second.",
        "network",
        ("interface",),
        rate_of="network_transmit_errors",
    ),
    _m(
        "network",
        "receive_drops",
        "per_second",
        G,
        "Incoming drops per second.",
        "network",
        ("interface",),
        rate_of="network_receive_drops",
    ),
    _m(
        "network",
        "transmit_drops",
        "per_second",
        G,
        "Outgoing drops per second.",
        "network",
        ("interface",),
        rate_of="network_transmit_drops",
    ),
    _m(
        "network",
        "speed",
        "bytes_per_second",
        G,
        "Link speed (interfaces that report one).",
        "network",
        ("interface",),
    ),
    _m(
        "network",
        "utilization",
        "percent",
        G,
        "Bandwidth used: the busier direction, percent of link speed.",
        "network",
        ("interface",),
        rate_of="network_receive_bytes",
    ),
    # --- sockets (slow: connections collector) ---------------------------------------------
    _m("netstat", "tcp_connections", "", G, "TCP sockets by state.", "connections", ("state",)),
    _m("netstat", "udp_sockets", "", G, "UDP sockets.", "connections"),
    # --- processes (slow) ------------------------------------------------------------------
    _m("processes", "state", "", G, "Processes by status.", "processes", ("state",)),
    _m("processes", "all", "", G, "All processes.", "processes"),
    _m("processes", "threads", "", G, "Threads of all processes.", "processes"),
    # --- system ----------------------------------------------------------------------------
    _m(
        "system",
        "info",
        "",
        I,
        "Host identity: hostname, OS, kernel, architecture, CPU model.",
        "system",
        ("hostname", "os", "kernel", "arch", "cpu_model"),
    ),
    _m("system", "boot_time", "seconds", G, "Boot time, seconds since the Unix epoch.", "system"),
    _m("system", "uptime", "seconds", G, "Seconds since boot.", "system"),
    # --- hardware sensors (psutil: Linux hwmon) -------------------------------------------
    _m(
        "sensor",
        "temperature",
        "celsius",
        G,
        "Temperature of a hardware sensor (CPU package, core, NVMe, board).",
        "sensors",
        ("chip", "sensor"),
        LINUX,
    ),
    _m(
        "sensor",
        "temperature_critical",
        "celsius",
        G,
        "The sensor's critical temperature (when the chip reports one).",
        "sensors",
        ("chip", "sensor"),
        LINUX,
    ),
    _m("sensor", "fan", "rpm", G, "Fan speed.", "sensors", ("chip", "sensor"), LINUX),
    # --- NVIDIA GPUs (nvidia-smi) -----------------------------------------------------------
    _m("gpu", "utilization", "percent", G, "GPU busy time.", "gpu", ("gpu", "name"), NOT_MACOS),
    _m("gpu", "memory_used", "bytes", G, "GPU memory in use.", "gpu", ("gpu", "name"), NOT_MACOS),
    _m("gpu", "memory_total", "bytes", G, "GPU memory.", "gpu", ("gpu", "name"), NOT_MACOS),
    _m(
        "gpu",
        "temperature",
        "celsius",
        G,
        "GPU core temperature.",
        "gpu",
        ("gpu", "name"),
        NOT_MACOS,
    ),
    _m("gpu", "power", "watts", G, "GPU power draw.", "gpu", ("gpu", "name"), NOT_MACOS),
    # --- containers (cgroups v2/v1: Docker, Podman, containerd, systemd services) ----------
    _c("cpu_usage", "seconds", C, "CPU time used by the container (all cores)."),
    _c(
        "cpu_usage",
        "percent",
        G,
        "CPU used by the container, percent of one core.",
        rate_of="container_cpu_usage_seconds",
    ),
    _c("memory_usage", "bytes", G, "Memory charged to the container, page cache included."),
    _c(
        "memory_working_set",
        "bytes",
        G,
        "Memory in use minus inactive page cache (what the OOM killer looks at).",
    ),
    _c("spec_memory_limit", "bytes", G, "The container's memory limit (absent: no limit)."),
    _c("oom_events", "", C, "Processes of the container killed for lack of memory."),
    _c(
        "network_receive",
        "bytes",
        C,
        "Bytes received by the container (own network namespace only).",
        ("interface",),
    ),
    _c(
        "network_transmit",
        "bytes",
        C,
        "Bytes sent by the container (own network namespace only).",
        ("interface",),
    ),
    _c(
        "network_receive",
        "bytes_per_second",
        G,
        "Bytes received per second by the container.",
        ("interface",),
        rate_of="container_network_receive_bytes",
    ),
    _c(
        "network_transmit",
        "bytes_per_second",
        G,
        "Bytes sent per second by the container.",
        ("interface",),
        rate_of="container_network_transmit_bytes",
    ),
    _c("fs_reads", "bytes", C, "Bytes read from block devices by the container."),
    _c("fs_writes", "bytes", C, "Bytes written to block devices by the container."),
    _c(
        "fs_reads",
        "bytes_per_second",
        G,
        "Block-device reads per second by the container.",
        rate_of="container_fs_reads_bytes",
    ),
    _c(
        "fs_writes",
        "bytes_per_second",
        G,
        "Block-device writes per second by the container.",
        rate_of="container_fs_writes_bytes",
    ),
    _c(
        "state",
        "",
        I,
        "The container's state: running, paused (frozen), or exited/created (from the API).",
        ("state",),
    ),
    # --- the agent itself: delivery (agent collector, from the shipper and spool) ---------
    _m("agent", "queued", "snapshots", C, "Snapshots written to the spool.", "agent"),
    _m("agent", "sent", "snapshots", C, "Snapshots the server acknowledged.", "agent"),
    _m(
        "agent",
        "rejected",
        "snapshots",
        C,
        "Snapshots the server refused with a 4xx; never resent.",
        "agent",
    ),
    _m(
        "agent",
        "dropped",
        "snapshots",
        C,
        "Snapshots dropped by a spool cap (reason size, age) or lost to spool damage (corrupt).",
        "agent",
        ("reason",),
    ),
    _m("agent", "send_retries", "", C, "Failed sends that were retried.", "agent"),
    _m("agent", "spool", "bytes", G, "Disk space used by the spool.", "agent"),
    _m("agent", "spool", "snapshots", G, "Snapshots waiting in the spool.", "agent"),
    _m("agent", "send_latency", "seconds", G, "Duration of the last accepted send.", "agent"),
    _m("agent", "send_duration", "seconds", C, "Time spent in accepted sends.", "agent"),
    _m("agent", "sends", "", C, "Accepted sends (requests).", "agent"),
)

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}
COLLECTORS: tuple[str, ...] = tuple(dict.fromkeys(m.collector for m in METRICS))


@dataclass(frozen=True, slots=True)
class ProcessField:
    name: str
    unit: str
    help: str


#: Columns of the top-N process lists (by CPU and by memory). Not series: structured records.
PROCESS_FIELDS: tuple[ProcessField, ...] = (
    ProcessField("pid", "", "Process ID."),
    ProcessField("name", "", "Executable name."),
    ProcessField("user", "", "Owner's user name."),
    ProcessField("cpu_percent", "percent", "CPU use since the last reading, percent of one core."),
    ProcessField("mem_percent", "percent", "Resident memory, percent of physical memory."),
    ProcessField("rss_bytes", "bytes", "Resident set size."),
    ProcessField("threads", "", "Number of threads."),
    ProcessField("status", "", "Process status (running, sleeping, ...)."),
    ProcessField("cmdline", "", "Command line."),
)


# --- custom metrics ------------------------------------------------------------------------
#: Series from textfile-collector files and exec plugins are ``custom:<Prometheus name>`` with
#: free labels (sorted by name), within these bounds. They are not in the catalog: gauges
#: without a unit, as the scripts that write them mean them.
CUSTOM_PREFIX = "custom:"
CUSTOM_MAX_NAME = 200
CUSTOM_MAX_LABELS = 16
CUSTOM_MAX_LABEL_VALUE = 256
_CUSTOM_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def is_custom(key: str) -> bool:
    return key.startswith(CUSTOM_PREFIX)


def custom_problem(key: str, labels: tuple[tuple[str, str], ...]) -> str | None:
    """Why ``key`` with ``labels`` is not an acceptable custom series, or None."""
    name = key.removeprefix(CUSTOM_PREFIX)
    if not _CUSTOM_NAME.fullmatch(name) or len(name) > CUSTOM_MAX_NAME:
        return f"custom metric name {name[:80]!r} is not a Prometheus name of at most 200 chars"
    if len(labels) > CUSTOM_MAX_LABELS:
        return f"more than {CUSTOM_MAX_LABELS} labels"
    names = [n for n, _ in labels]
    if names != sorted(set(names)):
        return "labels must be unique and sorted by name"
    for n, v in labels:
        if not _LABEL_NAME.fullmatch(n) or len(n) > CUSTOM_MAX_NAME:
            return f"label name {n[:80]!r} is not a Prometheus label name"
        if len(v) > CUSTOM_MAX_LABEL_VALUE:
            return f"label {n!r} is longer than {CUSTOM_MAX_LABEL_VALUE}"
    return None


def get(key: str) -> Metric:
    """The metric with this key; KeyError names the key when it is not in the catalog."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}") from None


def for_collector(collector: str) -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.collector == collector)
