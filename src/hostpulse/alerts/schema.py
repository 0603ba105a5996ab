"""Validated definitions of rules and silences, shared by alerts.yml, the API and the engine.

Every model forbids unknown keys, so a typo is reported with the key's path instead of being
silently ignored. Durations accept seconds (``120``) or text (``"2m"``, ``"1h30m"``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    FiniteFloat,
    Tag,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from hostpulse import catalog

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def parse_duration(value: object) -> float:
    """``"2m"`` -> 120.0; numbers are seconds. Raises ValueError with the offending text."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or text like '2m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            raise ValueError("empty duration")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _DURATION.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text):
                raise ValueError(
                    f"invalid duration {value!r}: use e.g. '30s', '2m', '1h30m'"
                ) from None
    else:
        raise ValueError("a duration must be a number of seconds or text like '2m'")
    if not math.isfinite(seconds):
        raise ValueError(f"duration {value!r} is not a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"duration {value!r} is negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(IntEnum):
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Op(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


class AggFn(StrEnum):
    LAST = "last"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


class HostSelector(Strict):
    """Which hosts a rule covers: all, or by name, or by labels (all given labels must match).

    Names and labels together mean either matches.
    """

    all: bool = True
    names: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some(self) -> HostSelector:
        if not (self.all or self.names or self.labels):
            raise ValueError("select hosts with 'all: true', 'names' or 'labels'")
        return self

    def matches(self, host: str, labels: dict[str, str]) -> bool:
        """``names`` match the host id or the host's ``hostname`` label."""
        if not (self.names or self.labels):
            return self.all
        if host in self.names or labels.get("hostname", "\x00") in self.names:
            return True
        if self.labels:
            return all(labels.get(k) == v for k, v in self.labels.items())
        return False


class Aggregation(Strict):
    fn: AggFn = AggFn.LAST
    window: Duration = 0.0


def _check_metric(key: str) -> str:
    if catalog.is_custom(key):  # a textfile / exec-plugin series: any label may be matched
        problem = catalog.custom_problem(key, ())
        if problem is not None:
            raise ValueError(problem)
        return key
    try:
        metric = catalog.get(key)
    except KeyError:
        raise ValueError(f"unknown metric {key!r} (see hostpulse.catalog)") from None
    if metric.kind is catalog.Kind.INFO:
        raise ValueError(f"metric {key!r} is informational and cannot be alerted on")
    return key


class Condition(Strict):
    """``metric{labels} <op> threshold``, evaluated on the aggregated value of each series."""

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    op: Op = Op.GT
    warning: FiniteFloat | None = None
    critical: FiniteFloat | None = None
    aggregation: Aggregation = Field(default_factory=Aggregation)

    @field_validator("metric")
    @classmethod
    def _metric_ok(cls, value: str) -> str:
        return _check_metric(value)

    @model_validator(mode="after")
    def _thresholds(self) -> Condition:
        if self.warning is None and self.critical is None:
            raise ValueError("give a 'warning' or a 'critical' threshold (or both)")
        custom = catalog.is_custom(self.metric)
        known = () if custom else catalog.get(self.metric).labels
        for name in self.labels:
            if not custom and name not in known:
                raise ValueError(
                    f"metric {self.metric!r} has no label {name!r} (it has: {list(known)})"
                )
        if self.warning is not None and self.critical is not None:
            upward = self.op in (Op.GT, Op.GE)
            if (upward and self.critical < self.warning) or (
                not upward and self.critical > self.warning
            ):
                word = "above" if upward else "below"
                raise ValueError(
                    f"critical ({self.critical}) must be at or {word} warning ({self.warning}) "
                    f"for operator '{self.op.value}'"
                )
        return self


class RuleBase(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    description: str = ""
    enabled: bool = True
    hosts: HostSelector = Field(default_factory=HostSelector)
    channels: tuple[str, ...] = ()
    """Channel ids to notify; empty means every enabled channel."""
    repeat_interval: Duration | None = None
    """Re-send a firing alert this often; None uses the global setting, 0 disables."""
    group_wait: Duration = 0.0
    """Collect alerts of this rule for this long and send them as one notification."""

    @property
    def title(self) -> str:
        return self.name or self.id


class ThresholdRule(RuleBase, Condition):
    kind: Literal["threshold"] = "threshold"
    for_: Duration = Field(default=0.0, alias="for")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CompoundRule(RuleBase):
    """Conditions joined by AND (all hold, severity = the lowest) or OR (any, the highest)."""

    kind: Literal["compound"] = "compound"
    match: Literal["and", "or"] = "and"
    conditions: tuple[Condition, ...] = Field(min_length=2, max_length=10)
    for_: Duration = Field(default=0.0, alias="for")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AbsentRule(RuleBase):
    """A host stopped reporting: no sample for ``intervals`` times its reporting interval."""

    kind: Literal["absent"] = "absent"
    intervals: float = Field(default=3.0, gt=0, le=1000)
    severity: Literal["warning", "critical"] = "critical"
    group_wait: Duration = 30.0


class ForecastRule(RuleBase):
    """A filesystem fills up within ``within`` at the linear trend of the last ``window``."""

    kind: Literal["forecast"] = "forecast"
    metric: str = "filesystem_free_bytes"
    labels: dict[str, str] = Field(default_factory=dict)
    window: Duration = 6 * 3600.0
    within: Duration = 24 * 3600.0
    min_points: int = Field(default=10, ge=3, le=10_000)
    severity: Literal["warning", "critical"] = "warning"

    @field_validator("metric")
    @classmethod
    def _metric_ok(cls, value: str) -> str:
        return _check_metric(value)

    @field_validator("window", "within")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value


AnyRule = ThresholdRule | CompoundRule | AbsentRule | ForecastRule


def _rule_kind(value: object) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind", "threshold")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


Rule = Annotated[
    Annotated[ThresholdRule, Tag("threshold")]
    | Annotated[CompoundRule, Tag("compound")]
    | Annotated[AbsentRule, Tag("absent")]
    | Annotated[ForecastRule, Tag("forecast")],
    Discriminator(
        _rule_kind,
        custom_error_type="invalid_rule_kind",
        custom_error_message="'kind' must be one of: threshold, compound, absent, forecast",
    ),
]


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class Recurrence(Strict):
    """A weekly maintenance window: on these days, from ``start`` for ``duration``."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: time
    duration: Duration
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("duration")
    @classmethod
    def _span(cls, value: float) -> float:
        if not 0 < value <= 7 * 86400:
            raise ValueError("must be between 0 and 7 days")
        return value


Instant = Annotated[
    datetime,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "Unix time in seconds"},
            ]
        }
    ),
]
"""A point in time: ISO 8601 with a zone, or Unix time (what validation accepts)."""


class SilenceSpec(Strict):
    """Mute notifications for matching alerts: by host, rule and/or host labels.

    One-off (``starts_at``/``ends_at``) or recurring (``recurring``). Every given matcher must
    match; at least one is required.
    """

    hosts: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    comment: str = ""
    created_by: str = Field(
        default="",
        description="Through the API: set by the server to the signed-in user who created the "
        "silence (a value sent is ignored). In alerts.yml: as written.",
    )
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    recurring: Recurrence | None = None

    @model_validator(mode="after")
    def _shape(self) -> SilenceSpec:
        if not (self.hosts or self.rules or self.labels):
            raise ValueError("a silence needs at least one of 'hosts', 'rules' or 'labels'")
        if self.recurring is None and self.ends_at is None:
            raise ValueError("give 'ends_at' (one-off silence) or 'recurring' (maintenance window)")
        if self.recurring is not None and (self.starts_at or self.ends_at):
            raise ValueError("'recurring' cannot be combined with 'starts_at'/'ends_at'")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"'{name}' needs a time zone (e.g. '2026-01-01T02:00:00Z')")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("'ends_at' must be after 'starts_at'")
        return self


_RULE_ADAPTER: TypeAdapter[AnyRule] = TypeAdapter(Rule)


def rule_from_dict(data: dict[str, Any]) -> AnyRule:
    """Validate a rule given as a plain mapping (alerts.yml, stored JSON)."""
    return _RULE_ADAPTER.validate_python(data)


def rule_to_dict(rule: AnyRule) -> dict[str, Any]:
    return rule.model_dump(mode="json", by_alias=True)
