"""CPU: time per core and mode, utilisation, load, context switches, interrupts, cores, frequency.

Linux reads /proc/stat, /proc/loadavg and sysfs directly; other platforms go through psutil.
"""

from __future__ import annotations

import glob
import logging
import os
import sys

import psutil

from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import (
    add,
    current_platform,
    platform_unsupported,
    read_text,
)
from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.collectors.pidfiles import OpenFiles, default_max_open
from hostpulse.agent.rates import Counters
from hostpulse.catalog import CPU_MODES

logger = logging.getLogger(__name__)

NAME = "cpu"
# psutil field names per catalog mode; Windows calls irq "interrupt" and softirq "dpc".
_PSUTIL_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("user",),
    "nice": ("nice",),
    "system": ("system",),
    "idle": ("idle",),
    "iowait": ("iowait",),
    "irq": ("irq", "interrupt"),
    "softirq": ("softirq", "dpc"),
    "steal": ("steal",),
}
_MODE_LABELS = {mode: (("mode", mode),) for mode in CPU_MODES}

Times = dict[str, dict[str, float]]
"""CPU name ("total", "0", "1", ...) -> mode -> seconds."""


class CpuCollector:
    name = NAME

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
        self._platform_unsupported = platform_unsupported(NAME, current_platform())
        self._clk_tck = float(os.sysconf("SC_CLK_TCK")) if self._procfs else 100.0
        self._prev_times: Times = {}
        self._counters = Counters(bits=64)
        self._calls = 0
        self._physical: int | None = None
        self._freq_files: list[str] = []
        self._freq_max: float | None = None
        self._cpuinfo_freq: float | None = None
        self._files = OpenFiles(default_max_open())  # /proc/stat, loadavg, scaling_cur_freq

    # ------------------------------------------------------------------ public
    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        if self._calls % self._refresh_every == 0:
            self._refresh_static(reading)
        self._calls += 1
        steps = (self._times_and_counts, self._load, self._frequency)
        for step in steps:
            try:
                step(reading, now)
            except (OSError, ValueError, IndexError, psutil.Error, NotImplementedError) as exc:
                reading.errors.append(f"cpu {step.__name__.strip('_')}: {exc}")
        if self._physical is None:
            reading.unsupported.add("cpu_physical_cores")
        else:
            add(reading, "cpu_physical_cores", self._physical)
        return reading

    # ------------------------------------------------------------------ steps
    def _times_and_counts(self, reading: Reading, now: float) -> None:
        if self._procfs:
            st = procfs.parse_proc_stat(self._files.text(f"{self._proc}/stat"))
            tck = self._clk_tck
            times: Times = {
                cpu: {mode: ticks / tck for mode, ticks in zip(CPU_MODES, values, strict=True)}
                for cpu, values in st.cpus.items()
            }
            counts = {
                "cpu_context_switches": st.ctxt,
                "cpu_interrupts": st.intr,
                "cpu_soft_interrupts": st.softirq,
            }
        else:
            times = {"total": _psutil_times(psutil.cpu_times())}
            for i, t in enumerate(psutil.cpu_times(percpu=True)):
                times[str(i)] = _psutil_times(t)
            cs = psutil.cpu_stats()
            counts = {
                "cpu_context_switches": cs.ctx_switches,
                "cpu_interrupts": cs.interrupts,
                "cpu_soft_interrupts": cs.soft_interrupts,
            }
        self._emit_times(reading, times)
        add(reading, "cpu_logical_cores", sum(1 for cpu in times if cpu != "total"))
        for key, value in counts.items():
            if key in reading.unsupported:
                continue
            if value is None:
                reading.unsupported.update((key, f"{key}_per_second"))
                continue
            add(reading, key, value)
            rate = self._counters.rate(key, value, now)
            if rate is not None:
                add(reading, f"{key}_per_second", rate)

    def _emit_times(self, reading: Reading, times: Times) -> None:
        for cpu, modes in times.items():
            if cpu == "total":
                continue
            for mode, seconds in modes.items():
                add(reading, "cpu_time_seconds", seconds, (("cpu", cpu), ("mode", mode)))
        prev = self._prev_times
        self._prev_times = times
        for cpu, modes in times.items():
            before = prev.get(cpu)
            if before is None:
                continue
            # A mode's counter can step back a tick (iowait is known to on NO_HZ kernels):
            # count that mode as 0 for the interval rather than drop the whole core.
            deltas = {mode: max(0.0, sec - before.get(mode, sec)) for mode, sec in modes.items()}
            whole = sum(deltas.values())
            if whole <= 0:  # no tick passed, or the core's counters started again
                continue
            idle = deltas.get("idle", 0.0) + deltas.get("iowait", 0.0)
            busy = 100.0 - idle / whole * 100.0
            if cpu == "total":
                for mode, d in deltas.items():
                    add(reading, "cpu_usage_percent", d / whole * 100.0, _MODE_LABELS[mode])
                add(reading, "cpu_busy_percent", busy)
            else:
                cpu_label = ("cpu", cpu)
                for mode, d in deltas.items():
                    labels = (cpu_label, ("mode", mode))
                    add(reading, "cpu_core_usage_percent", d / whole * 100.0, labels)
                add(reading, "cpu_core_busy_percent", busy, (cpu_label,))

    def _load(self, reading: Reading, now: float) -> None:
        if self._procfs:
            loads = procfs.parse_loadavg(self._files.text(f"{self._proc}/loadavg"))
        else:
            loads = psutil.getloadavg()
        for key, value in zip(("cpu_load1", "cpu_load5", "cpu_load15"), loads, strict=True):
            add(reading, key, value)

    def _frequency(self, reading: Reading, now: float) -> None:
        freq: float | None = None
        if self._procfs:
            values: list[float] = []
            for path in self._freq_files:
                try:
                    values.append(int(self._files.read(path)) * 1000.0)  # kHz
                except (OSError, ValueError):
                    continue  # a core went offline
            freq = sum(values) / len(values) if values else self._cpuinfo_freq
        else:
            f = psutil.cpu_freq() if hasattr(psutil, "cpu_freq") else None
            if f is not None and f.current:
                freq = f.current * 1e6
        if freq is None:
            reading.unsupported.add("cpu_frequency_hertz")
        else:
            add(reading, "cpu_frequency_hertz", freq)
        if self._freq_max is None:
            reading.unsupported.add("cpu_frequency_max_hertz")
        else:
            add(reading, "cpu_frequency_max_hertz", self._freq_max)

    # ------------------------------------------------------------------ static
    def _refresh_static(self, reading: Reading) -> None:
        """Core counts, frequency sources and limits change rarely: re-read every N calls."""
        try:
            if self._procfs:
                self._refresh_static_linux()
            else:
                self._physical = psutil.cpu_count(logical=False)
                f = psutil.cpu_freq() if hasattr(psutil, "cpu_freq") else None
                self._freq_max = f.max * 1e6 if f is not None and f.max else None
        except (OSError, ValueError, psutil.Error, NotImplementedError) as exc:
            reading.errors.append(f"cpu static: {exc}")

    def _refresh_static_linux(self) -> None:
        cpu_dirs = sorted(glob.glob(f"{self._sys}/devices/system/cpu/cpu[0-9]*"))
        cores: set[tuple[str, str]] = set()
        for d in cpu_dirs:
            try:
                pkg = read_text(f"{d}/topology/physical_package_id").strip()
                core = read_text(f"{d}/topology/core_id").strip()
            except OSError:
                continue  # offline cores have no topology
            cores.add((pkg, core))
        try:
            cpuinfo = read_text(f"{self._proc}/cpuinfo")
        except OSError:
            cpuinfo = ""
        if not cores and cpuinfo:
            cores = _cpuinfo_cores(cpuinfo)
        self._physical = len(cores) or None
        self._freq_files = [
            f"{d}/cpufreq/scaling_cur_freq"
            for d in cpu_dirs
            if os.path.exists(f"{d}/cpufreq/scaling_cur_freq")
        ]
        maxima: list[float] = []
        for d in cpu_dirs:
            try:
                maxima.append(int(read_text(f"{d}/cpufreq/cpuinfo_max_freq")) * 1000.0)
            except (OSError, ValueError):
                continue
        self._freq_max = max(maxima) if maxima else None
        mhz = procfs.cpuinfo_mhz(cpuinfo)
        self._cpuinfo_freq = sum(mhz) / len(mhz) * 1e6 if mhz else None


def _psutil_times(t: object) -> dict[str, float]:
    out: dict[str, float] = {}
    for mode, fields in _PSUTIL_FIELDS.items():
        for f in fields:
            value = getattr(t, f, None)
            if value is not None:
                out[mode] = float(value)
                break
    return out


def _cpuinfo_cores(cpuinfo: str) -> set[tuple[str, str]]:
    cores: set[tuple[str, str]] = set()
    pkg = core = ""
    for line in [*cpuinfo.splitlines(), ""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            pkg = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if pkg or core:
                cores.add((pkg, core))
            pkg = core = ""
    return cores
