"""NVIDIA GPUs through ``nvidia-smi --query-gpu`` (the driver's own tool; no NVML binding to
install). Without ``nvidia-smi`` on PATH the GPU metrics are unsupported, never an error; a
GPU that does not report a field ("[N/A]", "[Not Supported]") lacks just that metric.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable

from hostpulse import catalog
from hostpulse.agent.collectors._common import add, current_platform, platform_unsupported
from hostpulse.agent.collectors.base import Labels, Reading

logger = logging.getLogger(__name__)

NAME = "gpu"
KEYS = frozenset(m.key for m in catalog.for_collector(NAME))
FIELDS = (
    "index",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
)
QUERY = ["--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits"]
MiB = 1 << 20
# field -> (catalog key, scale)
_VALUES = {
    "utilization.gpu": ("gpu_utilization_percent", 1.0),
    "memory.used": ("gpu_memory_used_bytes", MiB),
    "memory.total": ("gpu_memory_total_bytes", MiB),
    "temperature.gpu": ("gpu_temperature_celsius", 1.0),
    "power.draw": ("gpu_power_watts", 1.0),
}
MAX_OUTPUT = 1 << 20
RECHECK = 300.0  # seconds between looking for nvidia-smi again when it was absent


def parse(text: str) -> tuple[list[tuple[str, Labels, float]], list[str]]:
    """``nvidia-smi`` CSV lines -> ``(key, labels, value)`` samples and problems (bad lines)."""
    samples: list[tuple[str, Labels, float]] = []
    problems: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(FIELDS):
            problems.append(f"nvidia-smi: unexpected line {line[:200]!r}")
            continue
        row = dict(zip(FIELDS, cells, strict=True))
        labels: Labels = (("gpu", row["index"]), ("name", row["name"]))
        for field, (key, scale) in _VALUES.items():
            try:
                samples.append((key, labels, float(row[field]) * scale))
            except ValueError:
                continue  # [N/A], [Not Supported]
    return samples, problems


class GpuCollector:
    name = NAME

    def __init__(
        self,
        *,
        command: str = "nvidia-smi",
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._command = command
        self._timeout = timeout
        self._clock = clock
        self._platform_unsupported = platform_unsupported(NAME, current_platform())
        self._path: str | None = None
        self._looked_at: float | None = None

    def _find(self) -> str | None:
        now = self._clock()
        if self._path is None and (self._looked_at is None or now - self._looked_at >= RECHECK):
            self._looked_at = now
            self._path = _which(self._command)
        return self._path

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        path = None if self._platform_unsupported >= KEYS else self._find()
        if path is None:
            reading.unsupported |= KEYS
            return reading
        try:
            done = subprocess.run(
                [path, *QUERY],
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            reading.errors.append(f"nvidia-smi: no answer within {self._timeout:g} s")
            reading.unsupported |= KEYS
            return reading
        except OSError as exc:
            reading.errors.append(f"nvidia-smi: {exc.strerror or exc}")
            self._path = None  # removed (driver uninstalled): look again later
            reading.unsupported |= KEYS
            return reading
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = err[0] if err else f"exit status {done.returncode}"
            reading.errors.append(f"nvidia-smi: {reason[:200]}")
            reading.unsupported |= KEYS
            return reading
        samples, problems = parse(done.stdout[:MAX_OUTPUT].decode("utf-8", "replace"))
        reading.errors.extend(problems)
        for key, labels, value in samples:
            add(reading, key, value, labels)
        reading.unsupported |= KEYS - {s.key for s in reading.samples}
        return reading


def _which(command: str) -> str | None:
    """``shutil.which`` on POSIX without importing shutil (which imports bz2 and lzma: 0.5 MB
    of the agent's memory for one PATH lookup a minute)."""
    if sys.platform == "win32":
        import shutil

        return shutil.which(command)
    if os.sep in command:
        candidates = [command]
    else:
        path = os.environ.get("PATH", os.defpath)
        candidates = [os.path.join(d or ".", command) for d in path.split(os.pathsep)]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None
