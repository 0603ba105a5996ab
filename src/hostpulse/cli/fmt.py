"""Human-readable values for terminal output."""

from __future__ import annotations

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float) -> str:
    size = float(value)
    for unit in _BINARY:
        if abs(size) < 1024 or unit == _BINARY[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # unreachable; keeps mypy's return check simple


def human(value: float, unit: str) -> str:
    """``value`` in the catalog ``unit`` as a short string."""
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
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"
