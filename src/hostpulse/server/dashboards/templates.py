"""The built-in boards a user starts from (``GET /api/v1/dashboards/templates``). Each is a
``BoardExport``, so a template is created exactly like an imported file."""

from __future__ import annotations

from typing import Any

from hostpulse.server.dashboards.schema import BoardExport


def _w(wid: str, kind: str, x: int, y: int, w: int, h: int, **more: Any) -> dict[str, Any]:
    return {"id": wid, "type": kind, "x": x, "y": y, "w": w, "h": h, **more}


_FLEET = {
    "name": "Fleet overview",
    "description": "Every host at a glance: status, CPU and memory per host, firing alerts.",
    "spec": {
        "range_s": 3600,
        "widgets": [
            _w("hosts", "hosts", 0, 0, 12, 4, title="Hosts"),
            _w("cpu", "timeseries", 0, 4, 6, 4, title="CPU busy", metric="cpu_busy_percent"),
            _w("mem", "bar", 6, 4, 6, 4, title="Memory used", metric="memory_usage_percent"),
            _w("alerts", "alerts", 0, 8, 6, 4, title="Alerts"),
            _w("fs", "table", 6, 8, 6, 4, title="Filesystems", metric="filesystem_usage_percent"),
        ],
    },
}

_HOST = {
    "name": "Single host",
    "description": "One host, chosen with $host: gauges, history, filesystems and processes.",
    "spec": {
        "range_s": 3600,
        "variables": [{"name": "host", "type": "host"}],
        "widgets": [
            _w("cpu-now", "stat", 0, 0, 3, 2, title="CPU", metric="cpu_busy_percent", host="$host"),
            _w(
                "mem-now",
                "gauge",
                3,
                0,
                3,
                2,
                title="Memory",
                metric="memory_usage_percent",
                host="$host",
                max=100,
            ),
            _w(
                "load-now",
                "stat",
                6,
                0,
                3,
                2,
                title="Load (1 min)",
                metric="cpu_load1",
                host="$host",
            ),
            _w(
                "swap-now",
                "gauge",
                9,
                0,
                3,
                2,
                title="Swap",
                metric="memory_swap_usage_percent",
                host="$host",
                max=100,
            ),
            _w(
                "cpu",
                "timeseries",
                0,
                2,
                6,
                4,
                title="CPU busy",
                metric="cpu_busy_percent",
                host="$host",
            ),
            _w(
                "net",
                "timeseries",
                6,
                2,
                6,
                4,
                title="Network received",
                metric="network_receive_bytes_per_second",
                host="$host",
            ),
            _w(
                "fs",
                "bar",
                0,
                6,
                6,
                4,
                title="Filesystems",
                metric="filesystem_usage_percent",
                host="$host",
                max=100,
            ),
            _w("procs", "processes", 6, 6, 6, 4, title="Top processes", host="$host"),
            _w("alerts", "alerts", 0, 10, 12, 3, title="Alerts of this host", host="$host"),
        ],
    },
}

_CHANGED = {
    "name": "What changed in the last hour",
    "description": "The last hour of every host side by side, with the alerts that fired.",
    "spec": {
        "range_s": 3600,
        "widgets": [
            _w("alerts", "alerts", 0, 0, 12, 3, title="Alerts in the last hour"),
            _w("cpu", "timeseries", 0, 3, 6, 4, title="CPU busy", metric="cpu_busy_percent"),
            _w("mem", "timeseries", 6, 3, 6, 4, title="Memory used", metric="memory_usage_percent"),
            _w(
                "net",
                "timeseries",
                0,
                7,
                6,
                4,
                title="Network received",
                metric="network_receive_bytes_per_second",
            ),
            _w(
                "disk",
                "timeseries",
                6,
                7,
                6,
                4,
                title="Disk written",
                metric="disk_write_bytes_per_second",
            ),
        ],
    },
}

TEMPLATES: dict[str, BoardExport] = {
    key: BoardExport.model_validate(doc)
    for key, doc in (("fleet", _FLEET), ("host", _HOST), ("changed", _CHANGED))
}
"""Template id -> the board it creates."""
