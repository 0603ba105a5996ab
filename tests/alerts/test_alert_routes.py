"""``AlertEngine.observe_routed`` (the ingest listener's way in, with each series' rules found
once per host series table) changes the alert state exactly as ``observe`` does."""

from __future__ import annotations

from typing import Any

from hostpulse.alerts.clock import ManualClock
from hostpulse.alerts.engine import AlertEngine
from hostpulse.alerts.schema import rule_from_dict
from hostpulse.alerts.types import Labels, Routed, Sample

CPU = "cpu_busy_percent"
FS = "filesystem_usage_percent"
ROOT: Labels = (("mountpoint", "/"),)
DATA: Labels = (("mountpoint", "/data"),)
RULES: list[dict[str, Any]] = [
    {"id": "cpu", "metric": CPU, "warning": 80, "critical": 90},
    {"id": "cpu_prod", "metric": CPU, "critical": 50, "hosts": {"labels": {"env": "prod"}}},
    {"id": "cpu_db", "metric": CPU, "warning": 60, "hosts": {"names": ["db-1"]}},
    {"id": "root", "metric": FS, "labels": {"mountpoint": "/"}, "warning": 80, "for": "10s"},
    {"id": "avg", "metric": CPU, "warning": 70, "aggregation": {"fn": "avg", "window": "30s"}},
    {
        "id": "both",
        "kind": "compound",
        "match": "and",
        "conditions": [
            {"metric": CPU, "op": ">", "warning": 75},
            {"metric": FS, "op": ">", "warning": 85},
        ],
    },
    {"id": "down", "kind": "absent", "intervals": 3},
]
HOSTS = [("h1", {"env": "prod"}), ("h2", {"env": "dev", "hostname": "db-1"}), ("h3", {})]


def _engine() -> tuple[AlertEngine, ManualClock]:
    clock = ManualClock()
    engine = AlertEngine(clock)
    engine.set_rules([rule_from_dict(r) for r in RULES])
    return engine, clock


def _routed(engine: AlertEngine, host: str, labels: dict[str, str], samples: list[Sample]):
    out: list[Routed] = []
    for metric, series, value in samples:
        routes = engine.routes(host, labels, metric)
        if routes:
            out.append((routes, series, value))
    return out


def test_observe_routed_gives_the_same_alerts_as_observe() -> None:
    plain, plain_clock = _engine()
    routed, routed_clock = _engine()
    seen: tuple[list[Any], list[Any]] = ([], [])
    for step in range(60):
        for clock in (plain_clock, routed_clock):
            clock.advance(5)
        for k, (host, labels) in enumerate(HOSTS):
            if host == "h3" and 20 <= step < 30:
                continue  # stops reporting for a while: "down" fires, then ends
            cpu = float((step * 7 + k * 13) % 100)
            samples: list[Sample] = [
                (CPU, (), cpu),
                (FS, ROOT, float((step * 3 + k * 29) % 100)),
                (FS, DATA, float((step * 11 + k) % 100)),
                ("memory_usage_percent", (), 99.0),  # no rule reads it
            ]
            now = plain_clock.now_ms()
            plain.observe(host, labels, now, samples)
            routed.observe_routed(host, labels, now, _routed(routed, host, labels, samples))
        for engine, out in ((plain, seen[0]), (routed, seen[1])):
            engine.tick()
            drained = engine.drain()
            out.append((drained.transitions, drained.notifications, drained.changed))
    assert seen[0] == seen[1]
    transitions = [t for step in seen[1] for t in step[0]]
    assert {t.rule_id for t in transitions} == {
        "cpu",
        "cpu_prod",
        "cpu_db",
        "root",
        "avg",
        "both",
        "down",
    }


def test_routes_follow_the_host_selectors_and_skip_unread_metrics() -> None:
    engine, _ = _engine()
    ids = {host: {route[0].__self__.rule.id for route in engine.routes(host, labels, CPU)}
           for host, labels in HOSTS}  # fmt: skip
    assert ids == {
        "h1": {"cpu", "cpu_prod", "avg", "both"},
        "h2": {"cpu", "cpu_db", "avg", "both"},
        "h3": {"cpu", "avg", "both"},
    }
    assert engine.routes("h1", {"env": "prod"}, "memory_usage_percent") == ()
