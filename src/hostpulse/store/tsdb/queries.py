"""PromQL for the store's reads and the parsing of the answers (Prometheus HTTP API JSON, which
VictoriaMetrics answers alike).

History buckets match the embedded store's: a point stamped ``b`` covers ``[b, b + step)``.
A range query evaluated at ``b + step - 1 ms`` with a ``[step]`` window covers exactly that
(VictoriaMetrics' windows are ``(t - step, t]``; Prometheus 2.x closes them on both ends, so
there a sample stamped exactly ``b - 1 ms`` is also counted in bucket ``b``)."""

from __future__ import annotations

import math
from typing import Any

from hostpulse import catalog
from hostpulse.store.tsdb.remote_write import HOST_LABEL, NAME_LABEL, metric_key, prom_name
from hostpulse.store.types import Agg

Labels = tuple[tuple[str, str], ...]

#: ``*_over_time`` function per aggregation of a history point.
OVER_TIME: dict[str, str] = {
    "avg": "avg_over_time",
    "min": "min_over_time",
    "max": "max_over_time",
    "count": "count_over_time",
    Agg.LAST.value: "last_over_time",
}


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def selector(
    host_id: str, metrics: list[str] | None = None, labels: dict[str, str] | None = None
) -> str:
    """``{host_id="h", __name__=~"a|b", label="v"}`` for a host's series of ``metrics``."""
    parts = [f"{HOST_LABEL}={quote(host_id)}"]
    if metrics:
        names = sorted({prom_name(m) for m in metrics})
        if len(names) == 1:
            parts.append(f"{NAME_LABEL}={quote(names[0])}")
        else:  # series names are [a-zA-Z_:][a-zA-Z0-9_:]*: nothing to escape in a regex
            parts.append(f"{NAME_LABEL}=~{quote('|'.join(names))}")
    for name, value in sorted((labels or {}).items()):
        parts.append(f"{name}={quote(value)}")
    return "{" + ", ".join(parts) + "}"


def duration(ms: int) -> str:
    return f"{max(ms, 1)}ms"


def seconds(ms: int) -> str:
    """A time for the query API (seconds since the epoch, millisecond precision)."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def catalog_order(metric: str, labels: dict[str, str]) -> Labels:
    """A series' labels as the store returns them: in the catalog's order (custom: by name)."""
    known = catalog.BY_KEY.get(metric)
    if known is not None:
        return tuple((n, labels.get(n, "")) for n in known.labels)
    return tuple(sorted(labels.items()))


def series_key(metric: dict[str, str], key: str | None = None) -> tuple[str, Labels]:
    """``(catalog key, labels)`` of a series in a query answer; ``key`` when the query names
    one metric (``*_over_time`` drops the series name)."""
    if key is None:
        key = metric_key(metric.get(NAME_LABEL, ""))
    rest = {k: v for k, v in metric.items() if k not in (NAME_LABEL, HOST_LABEL)}
    return key, catalog_order(key, rest)


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def result_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``data.result`` of a successful answer; ValueError with the TSDB's error otherwise."""
    if body.get("status") != "success":
        raise ValueError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
    data = body.get("data") or {}
    result: list[dict[str, Any]] = data.get("result") or []
    return result
