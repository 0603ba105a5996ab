"""Pure rule evaluation: thresholds, window aggregation, compound logic, trends, silences.

No I/O and no clock: every function takes the values and times it needs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hostpulse.alerts.schema import (
    AbsentRule,
    AggFn,
    AnyRule,
    Condition,
    HostSelector,
    Op,
    Severity,
    SilenceSpec,
    ThresholdRule,
    Weekday,
)

Labels = tuple[tuple[str, str], ...]


def compare(op: Op, value: float, threshold: float) -> bool:
    if op is Op.GT:
        return value > threshold
    if op is Op.GE:
        return value >= threshold
    if op is Op.LT:
        return value < threshold
    return value <= threshold


def severity_of(cond: Condition, value: float) -> Severity | None:
    """The highest severity whose threshold the value crosses, or None."""
    if cond.critical is not None and compare(cond.op, value, cond.critical):
        return Severity.CRITICAL
    if cond.warning is not None and compare(cond.op, value, cond.warning):
        return Severity.WARNING
    return None


def labels_match(wanted: dict[str, str], labels: Labels) -> bool:
    if not wanted:
        return True
    have = dict(labels)
    return all(have.get(k) == v for k, v in wanted.items())


def combine(match: str, severities: Iterable[Severity | None]) -> Severity | None:
    """AND: every condition holds, at the lowest severity; OR: any holds, at the highest."""
    values = list(severities)
    if match == "and":
        if not values or any(s is None for s in values):
            return None
        return min(s for s in values if s is not None)
    present = [s for s in values if s is not None]
    return max(present) if present else None


class Window:
    """Samples of one series over a sliding time window, aggregated on demand."""

    __slots__ = ("_points", "_sum", "_window_ms")

    def __init__(self, window_s: float) -> None:
        self._window_ms = int(window_s * 1000)
        self._points: deque[tuple[int, float]] = deque()
        self._sum = 0.0

    def add(self, ts_ms: int, value: float) -> None:
        points = self._points
        if points and ts_ms < points[-1][0]:
            return  # out of order: the window only moves forward
        points.append((ts_ms, value))
        self._sum += value
        cutoff = ts_ms - self._window_ms
        while points[0][0] <= cutoff and len(points) > 1:
            self._sum -= points.popleft()[1]

    def value(self, fn: AggFn) -> float:
        points = self._points
        if fn is AggFn.AVG:
            return self._sum / len(points)
        if fn is AggFn.MIN:
            return min(v for _, v in points)
        if fn is AggFn.MAX:
            return max(v for _, v in points)
        return points[-1][1]


class Trend:
    """A downsampled window of one series and the least-squares line through it."""

    __slots__ = ("_min_gap_ms", "_points", "_window_ms")

    def __init__(self, window_s: float, max_points: int = 240) -> None:
        self._window_ms = int(window_s * 1000)
        self._min_gap_ms = max(1, self._window_ms // max_points)
        self._points: deque[tuple[int, float]] = deque()

    def add(self, ts_ms: int, value: float) -> bool:
        """Keep the point if it is far enough from the previous one; True if kept."""
        points = self._points
        if points and ts_ms - points[-1][0] < self._min_gap_ms:
            return False
        points.append((ts_ms, value))
        cutoff = ts_ms - self._window_ms
        while points[0][0] < cutoff:
            points.popleft()
        return True

    def __len__(self) -> int:
        return len(self._points)

    def seconds_to_zero(self) -> float | None:
        """Seconds from the newest point until the fitted line reaches zero; None if not falling."""
        points = self._points
        n = len(points)
        if n < 2:
            return None
        t0 = points[0][0]
        xs = [(t - t0) / 1000.0 for t, _ in points]
        ys = [v for _, v in points]
        mean_x = sum(xs) / n
        mean_y = sum(ys) / n
        sxx = sum((x - mean_x) ** 2 for x in xs)
        if sxx == 0:
            return None
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
        if slope >= 0:
            return None
        now_value = mean_y + slope * (xs[-1] - mean_x)
        if now_value <= 0:
            return 0.0
        return now_value / -slope

    def span_s(self) -> float:
        if len(self._points) < 2:
            return 0.0
        return (self._points[-1][0] - self._points[0][0]) / 1000.0


_WEEKDAYS = list(Weekday)


def silence_active(spec: SilenceSpec, now_ms: int) -> bool:
    return silence_until(spec, now_ms) is not None


def silence_until(spec: SilenceSpec, now_ms: int) -> int | None:
    """When the silence's current window ends (ms), or None if it is not active now."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    if spec.recurring is None:
        if spec.starts_at is not None and now < spec.starts_at:
            return None
        if spec.ends_at is None:
            return _FOREVER_MS
        return int(spec.ends_at.timestamp() * 1000) if now < spec.ends_at else None
    rec = spec.recurring
    local = now.astimezone(ZoneInfo(rec.timezone))
    span = timedelta(seconds=rec.duration)
    # A window that started up to 7 days ago may still be open; the latest end counts.
    ends: list[int] = []
    for back in range(8):
        day = (local - timedelta(days=back)).date()
        if _WEEKDAYS[day.weekday()] not in rec.days:
            continue
        start = datetime.combine(day, rec.start, tzinfo=ZoneInfo(rec.timezone))
        if start <= local < start + span:
            ends.append(int((start + span).timestamp() * 1000))
    return max(ends) if ends else None


_FOREVER_MS = 253402300799000  # 9999-12-31T23:59:59Z: a one-off silence without an end


def silence_matches(
    spec: SilenceSpec, rule_id: str, host: str, host_labels: dict[str, str]
) -> bool:
    if spec.rules and rule_id not in spec.rules:
        return False
    if spec.hosts and host not in spec.hosts:
        return False
    return all(host_labels.get(k) == v for k, v in spec.labels.items())


def default_rules() -> list[AnyRule]:
    """The rules created on first start (thresholds from the seeds)."""
    everyone = HostSelector()
    return [
        ThresholdRule.model_validate(
            {
                "id": "cpu_high",
                "name": "CPU usage high",
                "metric": "cpu_busy_percent",
                "op": ">",
                "warning": 80,
                "critical": 90,
                "for": "2m",
                "hosts": everyone,
            }
        ),
        ThresholdRule.model_validate(
            {
                "id": "memory_high",
                "name": "Memory usage high",
                "metric": "memory_usage_percent",
                "op": ">",
                "warning": 85,
                "critical": 95,
                "for": "2m",
            }
        ),
        ThresholdRule.model_validate(
            {
                "id": "disk_full",
                "name": "Filesystem almost full",
                "metric": "filesystem_usage_percent",
                "op": ">",
                "warning": 80,
                "critical": 90,
                "for": "1m",
            }
        ),
        ThresholdRule.model_validate(
            {
                "id": "disk_io_wait",
                "name": "Disk I/O wait above 100 ms",
                "metric": "disk_await_seconds",
                "op": ">",
                "warning": 0.1,
                "for": "2m",
            }
        ),
        AbsentRule(id="host_down", name="Host stopped reporting", intervals=3),
    ]
