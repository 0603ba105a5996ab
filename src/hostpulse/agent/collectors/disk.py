"""Disks: filesystem usage per real mount (``disk_usage``) and block device I/O (``disk_io``).

Linux reads /proc/self/mountinfo (the host's ``<proc>/1/mountinfo`` with a host root),
statvfs(2) and /proc/diskstats; other platforms use psutil.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import psutil

from hostpulse import catalog
from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import (
    add,
    current_platform,
    percent,
    platform_unsupported,
    read_text,
)
from hostpulse.agent.collectors.base import Labels, Reading
from hostpulse.agent.collectors.devices import DeviceCounterCollector
from hostpulse.agent.collectors.statvfs_guard import GuardedStatvfs

logger = logging.getLogger(__name__)

#: Filesystems that hold no user data (kernel interfaces, memory-backed, read-only images).
PSEUDO_FS: frozenset[str] = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devfs",
        "devpts", "devtmpfs", "efivarfs", "erofs", "fusectl", "fuse.gvfsd-fuse", "fuse.portal",
        "fuse.lxcfs", "hugetlbfs", "iso9660", "mqueue", "nfsd", "nsfs", "overlay", "proc",
        "procfs", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs",
        "sysfs", "tmpfs", "tracefs", "nullfs", "none",
    }
)  # fmt: skip
_PSEUDO_MOUNT = re.compile(r"^/(dev|proc|sys|run/credentials/.+|var/lib/docker/.+|snap/.+)($|/)")
#: Block devices that are not disks (RAM disks, loop images, floppies).
_NOT_A_DISK = re.compile(r"^(ram|zram|loop|fd)\d+$")

StatVfs = Callable[[str], Any]


def real_mounts(mounts: list[procfs.Mount]) -> list[procfs.Mount]:
    """Drop pseudo filesystems and repeated mounts of the same filesystem.

    An ``overlay`` at ``/`` is kept: it is the root of a container. Of several mounts of one
    device (bind mounts), the one mounting the filesystem's root at the shortest path wins.
    """
    best: dict[str, procfs.Mount] = {}
    for m in mounts:
        if m.fstype in PSEUDO_FS and not (m.fstype == "overlay" and m.mountpoint == "/"):
            continue
        if m.mountpoint != "/" and _PSEUDO_MOUNT.match(m.mountpoint):
            continue
        seen = best.get(m.dev)
        if seen is None or (m.root == "/", -len(m.mountpoint)) > (
            seen.root == "/",
            -len(seen.mountpoint),
        ):
            best[m.dev] = m
    return sorted(best.values(), key=lambda m: m.mountpoint)


class DiskUsageCollector:
    name = "disk_usage"

    def __init__(
        self,
        *,
        proc_root: str = "/proc",
        rootfs: str = "/",
        use_procfs: bool | None = None,
        statvfs: StatVfs | None = None,
        network_timeout: float = 2.0,
    ) -> None:
        self._proc = proc_root
        # An agent in a container with the host's / at rootfs: the host's mounts are those of
        # its init process, each measured at rootfs + its mount point.
        self._rootfs = "" if rootfs.rstrip("/") == "" else rootfs.rstrip("/")
        self._mountinfo = (
            f"{proc_root}/1/mountinfo" if self._rootfs else f"{proc_root}/self/mountinfo"
        )
        self._procfs = sys.platform.startswith("linux") if use_procfs is None else use_procfs
        plain: StatVfs | None = statvfs or getattr(os, "statvfs", None)
        self._statvfs = GuardedStatvfs(plain, network_timeout) if plain is not None else None
        self._platform_unsupported = platform_unsupported(self.name, current_platform())

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        try:
            mounts = self._mounts()
        except (OSError, ValueError, psutil.Error) as exc:
            reading.errors.append(f"disk_usage mounts: {exc}")
            return reading
        inodes_seen = False
        for device, mountpoint, fstype in mounts:
            labels: Labels = (("device", device), ("mountpoint", mountpoint))
            try:
                inodes_seen |= self._one(reading, mountpoint, fstype, labels)
            except OSError as exc:  # permission denied, vanished mount, dead network share
                reading.errors.append(f"disk_usage {mountpoint}: {exc}")
        if not mounts:
            reading.unsupported.update(m.key for m in catalog.for_collector(self.name))
        elif not inodes_seen:
            reading.unsupported.update(
                ("filesystem_inodes", "filesystem_inodes_used", "filesystem_inodes_usage_percent")
            )
        return reading

    def _mounts(self) -> list[tuple[str, str, str]]:
        """(device, mount point, filesystem type) of each real filesystem."""
        if self._procfs:
            parsed = procfs.parse_mountinfo(read_text(self._mountinfo))
            return [(m.source, m.mountpoint, m.fstype) for m in real_mounts(parsed)]
        return [(p.device, p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=False)]

    def _one(self, reading: Reading, mountpoint: str, fstype: str, labels: Labels) -> bool:
        """Emit one mount's samples; True when it reported inodes."""
        if self._statvfs is None:  # Windows
            u = psutil.disk_usage(mountpoint)
            add(reading, "filesystem_size_bytes", u.total, labels)
            add(reading, "filesystem_used_bytes", u.used, labels)
            add(reading, "filesystem_free_bytes", u.free, labels)
            add(reading, "filesystem_usage_percent", percent(u.used, u.used + u.free), labels)
            return False
        # time-limited on network filesystems
        st = self._statvfs(self._rootfs + mountpoint, fstype)
        size = st.f_blocks * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        free = st.f_bavail * st.f_frsize
        add(reading, "filesystem_size_bytes", size, labels)
        add(reading, "filesystem_used_bytes", used, labels)
        add(reading, "filesystem_free_bytes", free, labels)
        # Like df: percent of what users can have (used + available), not of the raw size.
        add(reading, "filesystem_usage_percent", percent(used, used + free), labels)
        if st.f_files <= 0:  # btrfs and some network filesystems have no inode limit
            return False
        inodes_used = st.f_files - st.f_ffree
        add(reading, "filesystem_inodes", st.f_files, labels)
        add(reading, "filesystem_inodes_used", inodes_used, labels)
        add(reading, "filesystem_inodes_usage_percent", percent(inodes_used, st.f_files), labels)
        return True


class DiskIOCollector(DeviceCounterCollector[dict[str, float]]):
    name = "disk_io"
    _is_disk: dict[str, bool]

    def _forget(self) -> None:
        self._is_disk = {}  # devices come and go: classify them again now and then

    def collect(self, now: float) -> Reading:
        reading, devices = self._begin()
        if devices is None:
            return reading
        if not devices:  # no block device visible (some containers)
            reading.unsupported.update(m.key for m in catalog.for_collector(self.name))
        provided: set[str] = set()
        for name, values in devices.items():
            provided.update(values)
            self._emit(reading, name, values, now)
        for key, sources in _NEEDS.items():  # e.g. no weighted I/O time outside Linux
            if not sources <= provided:
                reading.unsupported.add(key)
        self._counters.retain((name, field) for name in devices for field in _FIELDS)
        return reading

    def _emit(self, reading: Reading, name: str, values: dict[str, float], now: float) -> None:
        labels: Labels = (("device", name),)
        deltas: dict[str, float] = {}
        elapsed = 0.0
        for key, value in values.items():
            scale = _MS.get(key, 1.0)
            add(reading, key, value / scale, labels)
            d = self._counters.delta((name, key), value, now)
            if d is not None:
                deltas[key] = d[0] / scale
                elapsed = d[1]
        for rate_key, source in _SIMPLE_RATES:
            if source in deltas:
                add(reading, rate_key, deltas[source] / elapsed, labels)
        ops = ("disk_reads_completed", "disk_writes_completed")
        times = ("disk_read_time_seconds", "disk_write_time_seconds")
        if all(k in deltas for k in ops + times):
            n = deltas[ops[0]] + deltas[ops[1]]
            wait = (deltas[times[0]] + deltas[times[1]]) / n if n > 0 else 0.0
            add(reading, "disk_await_seconds", wait, labels)
        if "disk_io_time_seconds" in deltas:
            busy = min(100.0, deltas["disk_io_time_seconds"] / elapsed * 100.0)
            add(reading, "disk_busy_percent", busy, labels)
        if "disk_io_time_weighted_seconds" in deltas:
            queue = deltas["disk_io_time_weighted_seconds"] / elapsed
            add(reading, "disk_queue_length", queue, labels)

    def _disk(self, name: str) -> bool:
        known = self._is_disk.get(name)
        if known is None:
            sys_name = name.replace("/", "!")
            known = not _NOT_A_DISK.match(name) and not os.path.exists(
                f"{self._sys}/class/block/{sys_name}/partition"
            )
            self._is_disk[name] = known
        return known

    def _read_linux(self) -> dict[str, dict[str, float]]:
        """Raw counters per disk; times in milliseconds."""
        out: dict[str, dict[str, float]] = {}
        for d in procfs.parse_diskstats(self._files.text(f"{self._proc}/diskstats")):
            if not self._disk(d.name):
                continue
            out[d.name] = {
                "disk_read_bytes": d.read_bytes,
                "disk_written_bytes": d.written_bytes,
                "disk_reads_completed": d.reads,
                "disk_writes_completed": d.writes,
                "disk_read_time_seconds": d.read_ms,
                "disk_write_time_seconds": d.write_ms,
                "disk_io_time_seconds": d.io_ms,
                "disk_io_time_weighted_seconds": d.weighted_ms,
            }
        return out

    def _read_psutil(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        counters = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        for name, c in counters.items():
            if _NOT_A_DISK.match(name):
                continue
            values = {
                "disk_read_bytes": c.read_bytes,
                "disk_written_bytes": c.write_bytes,
                "disk_reads_completed": c.read_count,
                "disk_writes_completed": c.write_count,
            }
            if hasattr(c, "read_time"):
                values["disk_read_time_seconds"] = c.read_time
                values["disk_write_time_seconds"] = c.write_time
            if hasattr(c, "busy_time"):
                values["disk_io_time_seconds"] = c.busy_time
            out[name] = {k: float(v) for k, v in values.items()}
        return out


_FIELDS = (
    "disk_read_bytes",
    "disk_written_bytes",
    "disk_reads_completed",
    "disk_writes_completed",
    "disk_read_time_seconds",
    "disk_write_time_seconds",
    "disk_io_time_seconds",
    "disk_io_time_weighted_seconds",
)
#: Time counters are read in milliseconds (kept raw so 32-bit wraps are seen) and sent in seconds.
_MS = {k: 1000.0 for k in _FIELDS if k.endswith("_seconds")}
_SIMPLE_RATES = (
    ("disk_read_bytes_per_second", "disk_read_bytes"),
    ("disk_write_bytes_per_second", "disk_written_bytes"),
    ("disk_reads_per_second", "disk_reads_completed"),
    ("disk_writes_per_second", "disk_writes_completed"),
)
#: Each key and the raw counters it is made from.
_NEEDS: dict[str, frozenset[str]] = {
    **{k: frozenset({k}) for k in _FIELDS},
    **{rate: frozenset({source}) for rate, source in _SIMPLE_RATES},
    "disk_await_seconds": frozenset(
        {
            "disk_reads_completed",
            "disk_writes_completed",
            "disk_read_time_seconds",
            "disk_write_time_seconds",
        }
    ),
    "disk_busy_percent": frozenset({"disk_io_time_seconds"}),
    "disk_queue_length": frozenset({"disk_io_time_weighted_seconds"}),
}
