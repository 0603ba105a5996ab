"""Memory and swap: sizes, usage, and swap-in/out rates.

Linux reads /proc/meminfo and /proc/vmstat; other platforms go through psutil.
"""

from __future__ import annotations

import logging
import os
import sys

import psutil

from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import (
    add,
    current_platform,
    percent,
    platform_unsupported,
)
from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.collectors.pidfiles import OpenFiles
from hostpulse.agent.rates import Counters

logger = logging.getLogger(__name__)

NAME = "memory"
_SWAP_COUNTERS = ("memory_swap_in_bytes", "memory_swap_out_bytes")


class MemoryCollector:
    name = NAME

    def __init__(self, *, proc_root: str = "/proc", use_procfs: bool | None = None) -> None:
        self._proc = proc_root
        self._procfs = sys.platform.startswith("linux") if use_procfs is None else use_procfs
        self._platform_unsupported = platform_unsupported(NAME, current_platform())
        self._page_size = os.sysconf("SC_PAGE_SIZE") if self._procfs else 4096
        self._counters = Counters(bits=64)
        self._files = OpenFiles(4)  # meminfo, vmstat

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        try:
            values = self._read_linux() if self._procfs else self._read_psutil()
        except (OSError, ValueError, KeyError, psutil.Error) as exc:
            reading.errors.append(f"memory: {exc}")
            return reading
        total = values["memory_total_bytes"] or 0.0
        available = values["memory_available_bytes"] or 0.0
        values["memory_used_bytes"] = total - available
        values["memory_usage_percent"] = percent(total - available, total)
        swap_total = values["memory_swap_total_bytes"] or 0.0
        swap_used = swap_total - (values["memory_swap_free_bytes"] or 0.0)
        values["memory_swap_used_bytes"] = swap_used
        values["memory_swap_usage_percent"] = percent(swap_used, swap_total)
        for key, value in values.items():
            if key in reading.unsupported:
                continue
            if value is None:
                reading.unsupported.add(key)
                if key in _SWAP_COUNTERS:
                    reading.unsupported.add(f"{key}_per_second")
                continue
            add(reading, key, value)
            if key in _SWAP_COUNTERS:
                rate = self._counters.rate(key, value, now)
                if rate is not None:
                    add(reading, f"{key}_per_second", rate)
        return reading

    def _read_linux(self) -> dict[str, float | None]:
        mi = procfs.parse_meminfo(self._files.text(f"{self._proc}/meminfo"))
        free = mi["MemFree"]
        buffers = mi.get("Buffers", 0)
        cached = mi.get("Cached", 0) + mi.get("SReclaimable", 0)
        available = mi.get("MemAvailable", free + buffers + cached)  # kernels before 3.14
        swap_in: float | None = None
        swap_out: float | None = None
        try:
            vm = procfs.pick_keyvalues(
                self._files.text(f"{self._proc}/vmstat"), ("pswpin", "pswpout")
            )
        except OSError:
            vm = {}
        if "pswpin" in vm and "pswpout" in vm:
            swap_in = vm["pswpin"] * self._page_size
            swap_out = vm["pswpout"] * self._page_size
        return {
            "memory_total_bytes": mi["MemTotal"],
            "memory_available_bytes": available,
            "memory_free_bytes": free,
            "memory_buffers_bytes": buffers,
            "memory_cached_bytes": cached,
            "memory_shared_bytes": mi.get("Shmem"),
            "memory_swap_total_bytes": mi.get("SwapTotal", 0),
            "memory_swap_free_bytes": mi.get("SwapFree", 0),
            "memory_swap_in_bytes": swap_in,
            "memory_swap_out_bytes": swap_out,
        }

    def _read_psutil(self) -> dict[str, float | None]:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        return {
            "memory_total_bytes": vm.total,
            "memory_available_bytes": vm.available,
            "memory_free_bytes": vm.free,
            "memory_buffers_bytes": getattr(vm, "buffers", None),
            "memory_cached_bytes": getattr(vm, "cached", None),
            "memory_shared_bytes": getattr(vm, "shared", None),
            "memory_swap_total_bytes": sw.total,
            "memory_swap_free_bytes": sw.free,
            "memory_swap_in_bytes": sw.sin,
            "memory_swap_out_bytes": sw.sout,
        }
