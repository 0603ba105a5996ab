"""Human-readable text of a notification: one line per alert, plain text and HTML bodies."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from importlib import resources
from string import Template

from hostpulse.alerts.types import AlertView, Notification

COLORS = {"critical": "#d32f2f", "warning": "#f9a825", "resolved": "#2e7d32", "info": "#1565c0"}


def status(n: Notification) -> str:
    if n.resolved:
        return "resolved"
    return n.severity.label if n.severity else "info"


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def value_text(view: AlertView) -> str:
    if math.isnan(view.value):
        return ""
    if math.isinf(view.value):
        return "inf"
    return f"{view.value:.4g}"


def series_text(view: AlertView) -> str:
    return ",".join(f"{k}={v}" for k, v in view.labels)


def host_text(view: AlertView) -> str:
    """The host as people know it, with its id alongside: ``web-1 (4f0c...)``."""
    if view.host_name and view.host_name != view.host:
        return f"{view.host_name} ({view.host})"
    return view.host


def line(view: AlertView) -> str:
    parts = [host_text(view)]
    if view.labels:
        parts.append(f"{{{series_text(view)}}}")
    sev = view.severity.label if view.severity else ""
    tail = f"{view.state.value}" + (f" {sev}" if sev and view.state.value == "firing" else "")
    value = value_text(view)
    return " ".join(parts) + f": {tail}" + (f", value {value}" if value else "")


def text(n: Notification) -> str:
    lines = [f"- {line(v)}" for v in n.alerts]
    return "\n".join([n.summary, *([n.description] if n.description else []), *lines])


def _template(name: str) -> Template:
    return Template(resources.files("hostpulse.alerts").joinpath("templates", name).read_text())


def email_text(n: Notification, sent_ms: int) -> str:
    rows = "\n".join(f"- {line(v)}" for v in n.alerts)
    return _template("email.txt").substitute(
        summary=n.summary, description=n.description, rows=rows, sent_at=iso(sent_ms)
    )


def email_html(n: Notification, sent_ms: int) -> str:
    e = html.escape
    rows = "\n".join(
        "    <tr>"
        f"<td>{e(host_text(v))}</td><td>{e(series_text(v))}</td>"
        f"<td>{e(v.severity.label if v.severity else '')}</td>"
        f"<td>{e(value_text(v))}</td><td>{e(iso(v.started_at_ms))}</td></tr>"
        for v in n.alerts
    )
    return _template("email.html").substitute(
        summary=e(n.summary),
        description=e(n.description),
        rows=rows,
        sent_at=e(iso(sent_ms)),
        color=COLORS[status(n)],
    )
