"""Small helpers shared by the collectors (no I/O at import time)."""

from __future__ import annotations

import sys

from hostpulse import catalog
from hostpulse.agent.collectors.base import Labels, Reading, Sample

NO_LABELS: Labels = ()


def current_platform() -> str:
    """The catalog's platform name for the running interpreter."""
    if sys.platform.startswith("linux"):
        return catalog.Platform.LINUX.value
    if sys.platform == "darwin":
        return catalog.Platform.MACOS.value
    if sys.platform.startswith("win"):
        return catalog.Platform.WINDOWS.value
    return sys.platform


def platform_unsupported(collector: str, platform: str) -> frozenset[str]:
    """Catalog keys of ``collector`` that the catalog says ``platform`` does not have."""
    return frozenset(
        m.key for m in catalog.for_collector(collector) if not m.supported_on(platform)
    )


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def add(reading: Reading, key: str, value: float, labels: Labels = NO_LABELS) -> None:
    reading.samples.append(Sample(key, labels, float(value)))


def percent(part: float, whole: float) -> float:
    return part / whole * 100.0 if whole > 0 else 0.0
