"""Human-friendly sizes and durations in settings: ``500MB``, ``64KiB``, ``7d``, ``1.5s``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}
_NUMBER_UNIT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")


def parse_size(value: object) -> object:
    """Bytes from an int or a string such as ``500MB`` / ``64KiB``; other values pass through
    for pydantic to reject with the key's name."""
    if not isinstance(value, str):
        return value
    m = _NUMBER_UNIT.fullmatch(value)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size (examples: 500MB, 64KiB, 1048576)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: object) -> object:
    """Seconds from a number or a string such as ``7d`` / ``12h`` / ``30s`` / ``250ms``."""
    if not isinstance(value, str):
        return value
    m = _NUMBER_UNIT.fullmatch(value)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _DURATION_UNITS:
        raise ValueError(f"{value!r} is not a duration (examples: 7d, 12h, 30s, 250ms, 1.5)")
    return float(m.group(1)) * _DURATION_UNITS[unit]


ByteSize = Annotated[int, BeforeValidator(parse_size)]
Seconds = Annotated[float, BeforeValidator(parse_duration)]
