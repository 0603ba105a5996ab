"""Hardware sensors: temperatures and fans (psutil, which reads Linux hwmon).

A host without sensors (most virtual machines) reports these metrics as unsupported, not zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil

from hostpulse import catalog
from hostpulse.agent.collectors._common import add, current_platform, platform_unsupported
from hostpulse.agent.collectors.base import Reading

NAME = "sensors"
KEYS = frozenset(m.key for m in catalog.for_collector(NAME))

Reader = Callable[[], dict[str, list[Any]]]


def _psutil_reader(name: str) -> Reader | None:
    fn = getattr(psutil, name, None)  # absent on macOS and Windows
    return fn if callable(fn) else None


class SensorsCollector:
    name = NAME

    def __init__(
        self,
        *,
        temperatures: Reader | None = None,
        fans: Reader | None = None,
    ) -> None:
        self._platform_unsupported = platform_unsupported(NAME, current_platform())
        self._temperatures = temperatures or _psutil_reader("sensors_temperatures")
        self._fans = fans or _psutil_reader("sensors_fans")

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        for reader, what in ((self._temperatures, "temperatures"), (self._fans, "fans")):
            if reader is None:
                continue
            try:
                found = reader()
            except (OSError, RuntimeError, ValueError) as exc:
                reading.errors.append(f"sensors {what}: {exc}")
                continue
            for chip, entries in sorted(found.items()):
                for i, e in enumerate(entries):
                    label = (("chip", chip), ("sensor", e.label or f"{what[:-1]}{i + 1}"))
                    if what == "fans":
                        add(reading, "sensor_fan_rpm", e.current, label)
                        continue
                    if e.current is None:
                        continue
                    add(reading, "sensor_temperature_celsius", e.current, label)
                    if e.critical:
                        add(reading, "sensor_temperature_critical_celsius", e.critical, label)
        reading.unsupported |= KEYS - {s.key for s in reading.samples}
        return reading
