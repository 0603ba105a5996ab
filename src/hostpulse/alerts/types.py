"""Plain data that crosses the engine's boundary: alert instances, transitions, notifications."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from hostpulse.alerts.schema import AnyRule, Severity

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]
Report = Callable[[AnyRule, str, Labels, Severity | None, float, int], None]
"""The engine's state machine as evaluators call it: (rule, host, series labels, severity or
None, value, time)."""
Routes = tuple[tuple[Callable[[int, str, Labels, int, float, Report], None], int], ...]
"""Where one series' samples go (``AlertEngine.routes``): (evaluator's ``on_sample``, condition
index) pairs."""
Routed = tuple[Routes, Labels, float]
"""A sample with its routes: (routes, series labels, value)."""


class State(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Kind(StrEnum):
    """Why a notification is sent."""

    FIRING = "firing"
    ESCALATED = "escalated"
    CHANGED = "changed"
    REPEAT = "repeat"
    RESOLVED = "resolved"
    TEST = "test"


def alert_id(rule_id: str, host: str, labels: Labels) -> str:
    text = "\x1f".join([rule_id, host, *(f"{k}={v}" for k, v in labels)])
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


@dataclass(slots=True)
class AlertInstance:
    """One alert: a rule applied to one host (and, for per-series rules, one series)."""

    rule_id: str
    host: str
    labels: Labels
    id: str = ""
    state: State = State.OK
    severity: Severity | None = None
    value: float = math.nan
    pending_since_ms: int | None = None
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    notified: State | None = None
    """The state the receivers were last told: firing, resolved or nothing yet."""
    notified_severity: Severity | None = None
    notified_at_ms: int = 0
    last_sent_ms: int = 0
    acked_by: str | None = None
    acked_at_ms: int | None = None
    updated_ms: int = 0

    def __post_init__(self) -> None:
        if not self.id:
            self.id = alert_id(self.rule_id, self.host, self.labels)

    @property
    def key(self) -> tuple[str, str, Labels]:
        return (self.rule_id, self.host, self.labels)


@dataclass(frozen=True, slots=True)
class Transition:
    alert_id: str
    rule_id: str
    host: str
    labels: Labels
    from_state: State
    to_state: State
    severity: Severity | None
    value: float
    at_ms: int


@dataclass(frozen=True, slots=True)
class AlertView:
    """What a notification says about one alert."""

    id: str
    rule_id: str
    host: str
    labels: Labels
    state: State
    severity: Severity | None
    value: float
    started_at_ms: int | None
    resolved_at_ms: int | None
    host_labels: Labels = ()
    host_name: str = ""
    """The host's hostname from the host registry ('' when unknown)."""

    @property
    def display(self) -> str:
        """What people call the host: its hostname, else its id."""
        return self.host_name or self.host

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "host": self.host,
            "host_name": self.display,
            "labels": dict(self.labels),
            "host_labels": dict(self.host_labels),
            "state": self.state.value,
            "severity": self.severity.label if self.severity else None,
            "value": None if math.isnan(self.value) or math.isinf(self.value) else self.value,
            "started_at_ms": self.started_at_ms,
            "resolved_at_ms": self.resolved_at_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertView:
        sev = data.get("severity")
        value = data.get("value")
        return cls(
            id=data["id"],
            rule_id=data["rule_id"],
            host=data["host"],
            host_name=data.get("host_name", "") if data.get("host_name") != data["host"] else "",
            labels=tuple(sorted(data.get("labels", {}).items())),
            host_labels=tuple(sorted(data.get("host_labels", {}).items())),
            state=State(data["state"]),
            severity=Severity[sev.upper()] if sev else None,
            value=math.nan if value is None else float(value),
            started_at_ms=data.get("started_at_ms"),
            resolved_at_ms=data.get("resolved_at_ms"),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    kind: Kind
    rule_id: str
    rule_title: str
    severity: Severity | None
    alerts: tuple[AlertView, ...]
    created_ms: int
    channels: tuple[str, ...] = ()
    """Channel ids to notify; empty means every enabled channel."""
    description: str = ""
    metric: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        return self.kind is Kind.RESOLVED

    @property
    def summary(self) -> str:
        hosts = sorted({a.display for a in self.alerts})
        sev = self.severity.label.upper() if self.severity else "INFO"
        status = "RESOLVED" if self.resolved else sev
        if self.kind is Kind.TEST:
            return "[TEST] hostpulse test notification"
        shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
        return f"[{status}] {self.rule_title} on {shown}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "rule_id": self.rule_id,
            "rule_title": self.rule_title,
            "severity": self.severity.label if self.severity else None,
            "alerts": [a.to_dict() for a in self.alerts],
            "created_ms": self.created_ms,
            "channels": list(self.channels),
            "description": self.description,
            "metric": self.metric,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notification:
        sev = data.get("severity")
        return cls(
            kind=Kind(data["kind"]),
            rule_id=data["rule_id"],
            rule_title=data["rule_title"],
            severity=Severity[sev.upper()] if sev else None,
            alerts=tuple(AlertView.from_dict(a) for a in data["alerts"]),
            created_ms=int(data["created_ms"]),
            channels=tuple(data.get("channels", ())),
            description=data.get("description", ""),
            metric=data.get("metric", ""),
        )


@dataclass(slots=True)
class HostSeen:
    """What the engine knows about a reporting host."""

    host: str
    labels: dict[str, str]
    last_seen_ms: int
    interval_ms: int = 5000
    last_ts_ms: int = 0


class NamedHost(Protocol):
    @property
    def hostname(self) -> str: ...


class HostDirectory(Protocol):
    """Where the alerts look up a host's name by its id: the store's host registry (its
    ``host(host_id)`` answers from memory). The alerts package does not import the server."""

    async def host(self, host_id: str) -> NamedHost | None: ...
