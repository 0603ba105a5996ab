"""Human-readable values for terminal output."""

from __future__ import annotations

from datetime import datetime

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")

#: Catalog keys whose value (seconds) is a moment or a span of time rather than an amount.
TIMESTAMP_KEYS = frozenset({"system_boot_time_seconds"})
DURATION_KEYS = frozenset({"system_uptime_seconds"})


def human_bytes(value: float) -> str:
    size = float(value)
    for unit in _BINARY:
        if abs(size) < 1024 or unit == _BINARY[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # unreachable; keeps mypy's return check simple


def human_duration(seconds: float) -> str:
    """``3d 4h 5m``, ``4h 5m``, ``5m 12s``, ``42s``: the two largest units."""
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def human_time(epoch_seconds: float) -> str:
    """Local date and time with its UTC offset: ``2026-12-06 09:33:17 +0000``."""
    return datetime.fromtimestamp(epoch_seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def human(value: float, unit: str, key: str = "") -> str:
    """``value`` in the catalog ``unit`` as a short string (``key``: the catalog key, for the
    values that are times rather than amounts)."""
    if key in TIMESTAMP_KEYS:
        return human_time(value)
    if key in DURATION_KEYS:
        return human_duration(value)
    if unit == "bytes":
        return human_bytes(value)
    if unit == "bytes_per_second":
        return human_bytes(value) + "/s"
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "seconds":
        return f"{value * 1000:.2f} ms" if 0 < abs(value) < 1 else f"{value:,.1f} s"
    if unit == "per_second":
        return f"{value:,.1f}/s"
    if unit == "hertz":
        return f"{value / 1e6:,.0f} MHz"
    if unit == "celsius":
        return f"{value:.1f} °C"
    if unit == "watts":
        return f"{value:.1f} W"
    if unit == "rpm":
        return f"{value:,.0f} rpm"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"
