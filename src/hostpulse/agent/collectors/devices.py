"""The skeleton shared by the per-device counter collectors (disks, network interfaces)."""

from __future__ import annotations

import sys
from typing import Generic, TypeVar

import psutil

from hostpulse.agent.collectors._common import current_platform, platform_unsupported
from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.collectors.pidfiles import OpenFiles
from hostpulse.agent.rates import Counters

Raw = TypeVar("Raw")


class DeviceCounterCollector(Generic[Raw]):
    """Reads raw counters per device from /proc (Linux) or psutil, keeps a per-device cache
    that is dropped every ``refresh_every`` collections (devices come and go, links
    renegotiate), and turns counters into rates with their width detected (some drivers and
    /proc/diskstats keep 32-bit counters even on 64-bit kernels)."""

    name: str

    def __init__(
        self,
        *,
        proc_root: str = "/proc",
        sys_root: str = "/sys",
        use_procfs: bool | None = None,
        refresh_every: int = 60,
    ) -> None:
        self._proc = proc_root
        self._sys = sys_root
        self._procfs = sys.platform.startswith("linux") if use_procfs is None else use_procfs
        self._refresh_every = refresh_every
        self._calls = 0
        self._platform_unsupported = platform_unsupported(self.name, current_platform())
        self._counters = Counters(bits=None)
        self._files = OpenFiles(4)  # /proc/net/dev, /proc/diskstats
        self._forget()

    def _forget(self) -> None:
        """Start (again) with an empty per-device cache."""

    def _read_linux(self) -> dict[str, Raw]:
        raise NotImplementedError

    def _read_psutil(self) -> dict[str, Raw]:
        raise NotImplementedError

    def _begin(self) -> tuple[Reading, dict[str, Raw] | None]:
        """A fresh reading and this collection's raw counters per device (None when they
        could not be read; the reading then carries the error)."""
        reading = Reading(unsupported=set(self._platform_unsupported))
        if self._calls % self._refresh_every == 0:
            self._forget()
        self._calls += 1
        try:
            return reading, self._read_linux() if self._procfs else self._read_psutil()
        except (OSError, ValueError, psutil.Error) as exc:
            reading.errors.append(f"{self.name}: {exc}")
            return reading, None
