"""System identity (hostname, OS, kernel, architecture, CPU model), boot time and uptime."""

from __future__ import annotations

import logging
import platform
import socket
import sys
import time
from collections.abc import Callable

import psutil

from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import (
    add,
    current_platform,
    platform_unsupported,
    read_text,
)
from hostpulse.agent.collectors.base import Reading, SystemInfo

logger = logging.getLogger(__name__)

NAME = "system"


class SystemCollector:
    name = NAME

    def __init__(
        self,
        *,
        proc_root: str = "/proc",
        rootfs: str = "/",
        use_procfs: bool | None = None,
        wall_clock: Callable[[], float] = time.time,
        refresh_every: int = 60,
    ) -> None:
        self._proc = proc_root
        self._rootfs = rootfs
        self._procfs = sys.platform.startswith("linux") if use_procfs is None else use_procfs
        self._wall = wall_clock
        self._refresh_every = refresh_every
        self._calls = 0
        self._info: SystemInfo | None = None
        self._platform_unsupported = platform_unsupported(NAME, current_platform())

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        if self._info is None or self._calls % self._refresh_every == 0:
            try:
                self._info = self._read_info()
            except (OSError, ValueError, psutil.Error) as exc:
                reading.errors.append(f"system: {exc}")
        self._calls += 1
        info = self._info
        if info is None:
            return reading
        reading.system = info
        labels = (
            ("hostname", info.hostname),
            ("os", info.os),
            ("kernel", info.kernel),
            ("arch", info.arch),
            ("cpu_model", info.cpu_model),
        )
        add(reading, "system_info", 1.0, labels)
        add(reading, "system_boot_time_seconds", info.boot_time)
        try:
            uptime = self._uptime(info.boot_time)
        except (OSError, ValueError) as exc:
            reading.errors.append(f"system uptime: {exc}")
        else:
            add(reading, "system_uptime_seconds", uptime)
        return reading

    def _uptime(self, boot_time: float) -> float:
        if self._procfs:
            return float(read_text(f"{self._proc}/uptime").split()[0])
        return self._wall() - boot_time

    def _read_info(self) -> SystemInfo:
        if self._procfs:
            return self._read_linux()
        return SystemInfo(
            hostname=socket.gethostname(),
            os=_os_name(self._rootfs),
            kernel=platform.release(),
            arch=platform.machine(),
            cpu_model=platform.processor() or platform.machine(),
            boot_time=float(psutil.boot_time()),
        )

    def _read_linux(self) -> SystemInfo:
        proc = self._proc
        st = procfs.parse_proc_stat(read_text(f"{proc}/stat"))
        boot = float(st.btime) if st.btime is not None else float(psutil.boot_time())
        try:
            cpuinfo = read_text(f"{proc}/cpuinfo")
        except OSError:
            cpuinfo = ""
        model = procfs.cpuinfo_field(cpuinfo, "model name", "Hardware", "Processor", "cpu model")
        return SystemInfo(
            hostname=read_text(f"{proc}/sys/kernel/hostname").strip(),
            os=_os_name(self._rootfs),
            kernel=read_text(f"{proc}/sys/kernel/osrelease").strip(),
            arch=platform.machine(),
            cpu_model=model or platform.processor() or platform.machine(),
            boot_time=boot,
        )


def _os_name(rootfs: str = "/") -> str:
    if sys.platform.startswith("linux"):
        try:
            if rootfs.rstrip("/"):  # the host's, not this container's
                release = _os_release(rootfs.rstrip("/"))
            else:
                release = platform.freedesktop_os_release()
        except OSError:
            return "Linux"
        return release.get("PRETTY_NAME") or release.get("NAME") or "Linux"
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]}".strip()
    if sys.platform.startswith("win"):
        return f"Windows {platform.release()} ({platform.version()})"
    return platform.system()


def _os_release(rootfs: str) -> dict[str, str]:
    """``KEY=value`` pairs of the os-release file under ``rootfs`` (os-release(5))."""
    for path in (f"{rootfs}/etc/os-release", f"{rootfs}/usr/lib/os-release"):
        try:
            text = read_text(path)
        except FileNotFoundError:
            continue
        out: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                out[key] = value.strip().strip("\"'")
        return out
    raise FileNotFoundError(f"no os-release under {rootfs}")
