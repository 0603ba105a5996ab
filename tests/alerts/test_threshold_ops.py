"""A threshold rule's severity for every operator, at, below and above its thresholds: the
evaluator's own comparison agrees with ``severity_of`` (the rule's definition)."""

from __future__ import annotations

import math

import pytest

from hostpulse.alerts.evaluators import ThresholdEvaluator
from hostpulse.alerts.rules import severity_of
from hostpulse.alerts.schema import Severity, ThresholdRule

VALUES = [-1.0, 0.0, 10.0, 19.999, 20.0, 20.001, 30.0, 40.0, 50.0, 1e9]


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
@pytest.mark.parametrize(("warning", "critical"), [(20.0, 40.0), (20.0, None), (None, 40.0)])
def test_each_operator_and_threshold(
    op: str, warning: float | None, critical: float | None
) -> None:
    if op in ("<", "<=") and warning is not None and critical is not None:
        warning, critical = critical, warning  # "below": critical is the lower bound
    rule = ThresholdRule.model_validate(
        {
            "id": "r",
            "metric": "cpu_busy_percent",
            "op": op,
            "warning": warning,
            "critical": critical,
        }
    )
    ev = ThresholdEvaluator(rule)
    got: list[Severity | None] = []
    for v in VALUES:
        ev.on_sample(0, "h", (), 1_000, v, lambda _r, _h, _l, sev, _v, _t: got.append(sev))
    assert got == [severity_of(rule, v) for v in VALUES]
    assert any(s is not None for s in got) and any(s is None for s in got)


def test_nan_and_other_series_labels_are_not_reported() -> None:
    rule = ThresholdRule.model_validate(
        {
            "id": "r",
            "metric": "filesystem_usage_percent",
            "labels": {"mountpoint": "/"},
            "op": ">",
            "critical": 90,
        }
    )
    ev = ThresholdEvaluator(rule)
    got: list[tuple[tuple[tuple[str, str], ...], Severity | None]] = []

    def report(_r: object, _h: str, labels: tuple[tuple[str, str], ...], sev: Severity | None,
               _v: float, _t: int) -> None:  # fmt: skip
        got.append((labels, sev))

    ev.on_sample(0, "h", (("mountpoint", "/"),), 1, math.nan, report)
    ev.on_sample(0, "h", (("mountpoint", "/var"),), 1, 95.0, report)
    ev.on_sample(0, "h", (("mountpoint", "/"),), 1, 95.0, report)
    assert got == [((("mountpoint", "/"),), Severity.CRITICAL)]
