"""Parsers for the Linux /proc files the collectors read (pure functions over text).

Reading /proc directly is several times cheaper than going through psutil for the same numbers,
and lets tests point the collectors at a fixture tree (``proc_root``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

CPU_FIELDS = 8  # user nice system idle iowait irq softirq steal (catalog.CPU_MODES order)
SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's block size

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class ProcStat:
    cpus: dict[str, tuple[int, ...]]
    """Ticks per mode (CPU_MODES order) for ``"total"`` and for each core (``"0"``, ``"1"``...)."""
    ctxt: int | None
    intr: int | None
    softirq: int | None
    btime: int | None


def parse_proc_stat(text: str) -> ProcStat:
    cpus: dict[str, tuple[int, ...]] = {}
    ctxt = intr = softirq = btime = None
    for line in text.splitlines():
        if line.startswith("cpu"):
            parts = line.split()
            name = parts[0][3:] or "total"
            values = [int(v) for v in parts[1 : 1 + CPU_FIELDS]]
            values.extend([0] * (CPU_FIELDS - len(values)))  # very old kernels lack steal
            cpus[name] = tuple(values)
        elif line.startswith("ctxt "):
            ctxt = int(line[5:])
        elif line.startswith("intr "):
            intr = int(line.split(None, 2)[1])
        elif line.startswith("softirq "):
            softirq = int(line.split(None, 2)[1])
        elif line.startswith("btime "):
            btime = int(line[6:])
    return ProcStat(cpus, ctxt, intr, softirq, btime)


def parse_loadavg(text: str) -> tuple[float, float, float]:
    a, b, c = text.split()[:3]
    return float(a), float(b), float(c)


def parse_meminfo(text: str) -> dict[str, int]:
    """Field -> bytes (values given in kB are converted)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        value = int(parts[0])
        if len(parts) > 1 and parts[1] == "kB":
            value *= 1024
        out[name] = value
    return out


def pick_keyvalues(text: str, names: tuple[str, ...]) -> dict[str, int]:
    """Just ``names`` from ``name value`` lines (/proc/vmstat has ~180 lines; we need two)."""
    out: dict[str, int] = {}
    padded = "\n" + text
    for name in names:
        at = padded.find(f"\n{name} ")
        if at < 0:
            continue
        start = at + len(name) + 2
        end = padded.find("\n", start)
        out[name] = int(padded[start : end if end >= 0 else None])
    return out


@dataclass(frozen=True, slots=True)
class DiskStat:
    major: int
    minor: int
    name: str
    reads: int
    read_bytes: int
    read_ms: int
    writes: int
    written_bytes: int
    write_ms: int
    in_progress: int
    io_ms: int
    weighted_ms: int


def parse_diskstats(text: str) -> list[DiskStat]:
    """One record per well-formed line; a malformed line is skipped, never the whole file."""
    out: list[DiskStat] = []
    for line in text.splitlines():
        p = line.split()
        if len(p) < 14:
            continue
        try:
            out.append(
                DiskStat(
                    major=int(p[0]),
                    minor=int(p[1]),
                    name=p[2],
                    reads=int(p[3]),
                    read_bytes=int(p[5]) * SECTOR_BYTES,
                    read_ms=int(p[6]),
                    writes=int(p[7]),
                    written_bytes=int(p[9]) * SECTOR_BYTES,
                    write_ms=int(p[10]),
                    in_progress=int(p[11]),
                    io_ms=int(p[12]),
                    weighted_ms=int(p[13]),
                )
            )
        except ValueError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class NetDev:
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int


def parse_net_dev(text: str) -> dict[str, NetDev]:
    """Interface -> counters; a malformed line is skipped, never the whole file."""
    out: dict[str, NetDev] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        v = rest.split()
        if not sep or len(v) < 12:
            continue
        try:
            out[name.strip()] = NetDev(*(int(v[i]) for i in (0, 1, 2, 3, 8, 9, 10, 11)))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class Mount:
    dev: str  # "major:minor"
    root: str  # the path inside the filesystem that is mounted ("/" unless a bind mount)
    mountpoint: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """/proc/<pid>/mountinfo lines (see proc(5)); malformed lines are skipped."""
    out: list[Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lp = left.split()
        rp = right.split()
        if len(lp) < 5 or len(rp) < 2:
            continue
        out.append(Mount(lp[2], _unescape(lp[3]), _unescape(lp[4]), rp[0], _unescape(rp[1])))
    return out


class PidStat(NamedTuple):
    name: str
    state: str  # one letter: R S D T t Z X I P ...
    cpu_ticks: int  # utime + stime
    threads: int
    start_ticks: int  # since boot; (pid, start_ticks) identifies a process across pid reuse
    rss_pages: int


def parse_pid_stat(data: bytes) -> PidStat:
    """/proc/<pid>/stat. The name sits in parentheses and may itself hold spaces and ')'.

    Raises ValueError or IndexError on a truncated file (a process caught while exiting).
    """
    close_at = data.rindex(b")")
    rest = data[close_at + 2 :].split()
    # rest[0] is field 3 (state); field n is rest[n - 3].
    return PidStat(
        data[data.index(b"(") + 1 : close_at].decode("utf-8", "replace"),
        rest[0].decode("ascii", "replace"),
        int(rest[11]) + int(rest[12]),
        int(rest[17]),
        int(rest[19]),
        int(rest[21]),
    )


def cpuinfo_field(text: str, *names: str) -> str | None:
    """First value of any of ``names`` in /proc/cpuinfo."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in names:
            return value.strip()
    return None


def cpuinfo_mhz(text: str) -> list[float]:
    out: list[float] = []
    for line in text.splitlines():
        if line.startswith("cpu MHz"):
            out.append(float(line.partition(":")[2]))
    return out
