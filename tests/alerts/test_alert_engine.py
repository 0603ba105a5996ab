"""Alert lifecycle on a fake clock: exact notification counts for the policies users rely on."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hostpulse.alerts.clock import ManualClock
from hostpulse.alerts.engine import AlertEngine, EngineSettings
from hostpulse.alerts.schema import Severity, SilenceSpec, rule_from_dict
from hostpulse.alerts.types import Kind, Notification, State

CPU = "cpu_busy_percent"


class Harness:
    def __init__(self, rules: list[dict[str, Any]], **settings: Any) -> None:
        self.clock = ManualClock()
        self.engine = AlertEngine(self.clock, EngineSettings(**settings))
        self.engine.set_rules([rule_from_dict(r) for r in rules])
        self.sent: list[Notification] = []

    def feed(self, host: str, metric: str, value: float, labels: tuple[tuple[str, str], ...] = ()):
        self.engine.observe(host, {}, self.clock.now_ms(), [(metric, labels, value)])
        self.collect()

    def tick(self) -> None:
        self.engine.tick()
        self.collect()

    def collect(self) -> None:
        self.sent.extend(self.engine.drain().notifications)

    def run(self, seconds: float, value: float, host: str = "h1", step: float = 5.0) -> None:
        """Feed one sample every ``step`` seconds for ``seconds`` and tick after each."""
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            self.feed(host, CPU, value)
            self.tick()

    def kinds(self) -> list[Kind]:
        return [n.kind for n in self.sent]


def cpu_rule(**extra: Any) -> dict[str, Any]:
    return {"id": "cpu", "metric": CPU, "warning": 80, "critical": 90, **extra}


def test_breach_held_30_minutes_sends_one_firing_and_one_resolved() -> None:
    h = Harness([cpu_rule(**{"for": "2m"})], dedup_window_s=300, repeat_interval_s=0)
    h.run(60, 10)
    h.run(30 * 60, 85)
    h.run(10 * 60, 10)
    assert h.kinds() == [Kind.FIRING, Kind.RESOLVED]
    assert h.sent[0].severity is Severity.WARNING
    assert h.sent[0].alerts[0].host == "h1"


def test_for_duration_keeps_alert_pending_until_it_elapses() -> None:
    h = Harness([cpu_rule(**{"for": "2m"})])
    h.run(115, 95)
    assert h.sent == []
    assert [i.state for i in h.engine.active()] == [State.PENDING]
    h.run(10, 95)
    assert h.kinds() == [Kind.FIRING]
    assert h.sent[0].severity is Severity.CRITICAL


def test_short_breach_below_for_duration_sends_nothing() -> None:
    h = Harness([cpu_rule(**{"for": "2m"})])
    h.run(60, 95)
    h.run(600, 10)
    assert h.sent == []
    assert h.engine.active() == []


def test_warning_then_critical_sends_two_notifications() -> None:
    h = Harness([cpu_rule()], repeat_interval_s=0)
    h.run(60, 85)
    h.run(60, 95)
    assert h.kinds() == [Kind.FIRING, Kind.ESCALATED]
    assert [n.severity for n in h.sent] == [Severity.WARNING, Severity.CRITICAL]


def test_flapping_series_sends_at_most_one_notification_per_window() -> None:
    h = Harness([cpu_rule()], dedup_window_s=300, repeat_interval_s=0)
    start = h.clock.now_ms()
    times: list[int] = []
    for i in range(120):  # 20 minutes of 10 s above, 10 s below
        h.run(10, 95 if i % 2 == 0 else 10)
        while len(times) < len(h.sent):
            times.append(h.clock.now_ms())
    assert h.sent, "the first breach must be announced"
    for a, b in itertools.pairwise(times):
        assert b - a >= 300_000, f"two notifications {b - a} ms apart"
    assert len(times) <= (h.clock.now_ms() - start) // 300_000 + 1


def test_repeat_interval_resends_long_firing_alert_and_ack_stops_it() -> None:
    h = Harness([cpu_rule(repeat_interval="10m")])
    h.run(35 * 60, 85)
    assert h.kinds() == [Kind.FIRING, Kind.REPEAT, Kind.REPEAT, Kind.REPEAT]
    alert = h.engine.active()[0]
    h.engine.acknowledge(alert.id, "alice")
    assert h.engine.active()[0].acked_by == "alice"
    h.run(60 * 60, 85)
    assert len(h.sent) == 4
    h.run(10 * 60, 10)
    assert h.kinds()[-1] is Kind.RESOLVED


def test_silenced_alert_is_not_sent_and_is_announced_when_silence_ends() -> None:
    h = Harness([cpu_rule()], repeat_interval_s=0)
    now = datetime.fromtimestamp(h.clock.now_ms() / 1000, tz=UTC)
    silence = SilenceSpec(hosts=("h1",), ends_at=now + timedelta(minutes=30))
    h.engine.set_silences({"s1": silence})
    h.run(20 * 60, 95)
    h.feed("h2", CPU, 95)
    assert [n.alerts[0].host for n in h.sent] == ["h2"]
    h.run(15 * 60, 95)
    assert [n.alerts[0].host for n in h.sent] == ["h2", "h1"]


def test_recurring_maintenance_window_silences_only_inside_the_window() -> None:
    h = Harness([cpu_rule()], repeat_interval_s=0)
    # 2026-11-22 is a Sunday; window Sundays 02:00-04:00 UTC.
    h.clock.set(int(datetime(2026, 11, 22, 2, 30, tzinfo=UTC).timestamp() * 1000))
    spec = SilenceSpec.model_validate(
        {"rules": ["cpu"], "recurring": {"days": ["sun"], "start": "02:00", "duration": "2h"}}
    )
    h.engine.set_silences({"mw": spec})
    h.run(60, 95)
    assert h.sent == []
    h.clock.set(int(datetime(2026, 11, 22, 4, 0, 5, tzinfo=UTC).timestamp() * 1000))
    h.run(10, 95)
    assert h.kinds() == [Kind.FIRING]


def test_ten_hosts_stopping_together_give_one_grouped_notification() -> None:
    h = Harness([{"id": "down", "kind": "absent", "intervals": 3, "group_wait": "30s"}])
    hosts = [f"web-{i:02d}" for i in range(10)]
    for _ in range(6):
        h.clock.advance(5)
        for i, host in enumerate(hosts):
            h.clock.advance(0.1 * (i % 3))
            h.feed(host, CPU, 5)
        h.tick()
    for _ in range(30):
        h.clock.advance(5)
        h.feed("survivor", CPU, 5)
        h.tick()
    assert h.kinds() == [Kind.FIRING]
    assert sorted(a.host for a in h.sent[0].alerts) == hosts
    assert "and 5 more" in h.sent[0].summary
    for _ in range(80):  # back for 400 s: the resolution waits out the 300 s window, then one
        h.clock.advance(5)
        for host in [*hosts, "survivor"]:
            h.feed(host, CPU, 5)
        h.tick()
    assert h.kinds() == [Kind.FIRING, Kind.RESOLVED]
    assert len(h.sent[1].alerts) == 10


def test_compound_and_rule_needs_both_conditions() -> None:
    rule = {
        "id": "busy",
        "kind": "compound",
        "match": "and",
        "conditions": [
            {"metric": CPU, "warning": 80},
            {"metric": "memory_usage_percent", "critical": 90},
        ],
    }
    h = Harness([rule])
    h.clock.advance(5)
    h.feed("h1", CPU, 95)
    h.feed("h1", "memory_usage_percent", 50)
    assert h.sent == []
    h.feed("h1", "memory_usage_percent", 95)
    assert h.kinds() == [Kind.FIRING]
    assert h.sent[0].severity is Severity.WARNING  # AND takes the lowest


def test_window_aggregation_avg_ignores_a_single_spike() -> None:
    h = Harness([cpu_rule(aggregation={"fn": "avg", "window": "1m"})])
    h.run(60, 10)
    h.run(5, 100)
    assert h.sent == []
    h.run(60, 100)
    assert h.kinds()[0] is Kind.FIRING


def test_host_selector_by_name_matches_id_or_hostname_label() -> None:
    h = Harness([cpu_rule(hosts={"names": ["db-1"]})])
    now = h.clock.now_ms()
    h.engine.observe("id-7", {"hostname": "db-1"}, now, [(CPU, (), 95)])
    h.engine.observe("db-1", {}, now, [(CPU, (), 95)])
    h.engine.observe("web-1", {"hostname": "web-1"}, now, [(CPU, (), 95)])
    h.collect()
    assert sorted(n.alerts[0].host for n in h.sent) == ["db-1", "id-7"]


def test_host_selector_by_labels_and_series_labels() -> None:
    rule = {
        "id": "root",
        "metric": "filesystem_usage_percent",
        "labels": {"mountpoint": "/"},
        "warning": 80,
        "hosts": {"labels": {"env": "prod"}},
    }
    h = Harness([rule])
    root = (("device", "sda1"), ("mountpoint", "/"))
    data = (("device", "sdb1"), ("mountpoint", "/data"))
    now = h.clock.now_ms()
    h.engine.observe("p1", {"env": "prod"}, now, [("filesystem_usage_percent", root, 85)])
    h.engine.observe("p1", {"env": "prod"}, now, [("filesystem_usage_percent", data, 99)])
    h.engine.observe("d1", {"env": "dev"}, now, [("filesystem_usage_percent", root, 99)])
    h.collect()
    assert [(n.alerts[0].host, n.alerts[0].labels) for n in h.sent] == [("p1", root)]


def test_disk_forecast_fires_on_a_filling_disk_before_full_and_not_on_a_flat_one() -> None:
    rule = {"id": "fill", "kind": "forecast", "window": "1h", "within": "4h"}
    h = Harness([rule])
    mount = (("device", "sda1"), ("mountpoint", "/"))
    flat = (("device", "sdb1"), ("mountpoint", "/data"))
    free, total = 100e9, 100e9
    fired_at_free = None
    for i in range(2 * 720):  # 2 hours, every 5 s; loses 20 GB per hour
        h.clock.advance(5)
        free = total - 20e9 * (i * 5 / 3600)
        noise = 1e6 * ((i * 7919) % 13 - 6)
        h.engine.observe(
            "h1",
            {},
            h.clock.now_ms(),
            [("filesystem_free_bytes", mount, free), ("filesystem_free_bytes", flat, 50e9 + noise)],
        )
        h.collect()
        if h.sent and fired_at_free is None:
            fired_at_free = free
    assert [n.alerts[0].labels for n in h.sent] == [mount]
    assert fired_at_free is not None and fired_at_free > 0
    # 4 h at 20 GB/h = 80 GB: it fires once free space is about 80 GB, long before full.
    assert 70e9 < fired_at_free <= 80.5e9


def test_acknowledging_an_unknown_alert_is_an_error() -> None:
    h = Harness([cpu_rule()])
    with pytest.raises(Exception, match="no active alert"):
        h.engine.acknowledge("nope", "bob")


def test_restart_mid_incident_sends_nothing_extra() -> None:
    h = Harness([cpu_rule()], repeat_interval_s=0)
    h.run(60, 95)
    assert h.kinds() == [Kind.FIRING]
    out = h.engine.drain()
    assert out.notifications == []
    saved = list(h.engine._instances.values())
    hosts = list(h.engine._hosts.values())
    again = AlertEngine(h.clock, EngineSettings(repeat_interval_s=0))
    again.set_rules([rule_from_dict(cpu_rule())])
    again.restore(saved, hosts)
    h.engine = again
    h.run(10 * 60, 95)
    assert h.kinds() == [Kind.FIRING]
    h.run(60, 10)
    assert h.kinds() == [Kind.FIRING, Kind.RESOLVED]


def test_a_pending_alert_restored_after_a_crash_waits_its_whole_for_again() -> None:
    """Found by an outside check: pending saved, the return to ok not yet saved (changes that
    send nothing are saved within 1 s), a crash; after the restart one breaching sample fired at
    once because the saved pending start was taken as proof the breach had held."""
    h = Harness([cpu_rule(**{"for": "30s"})], repeat_interval_s=0)
    h.run(20, 95)  # pending for 15 s
    saved = [dataclasses.replace(i) for i in h.engine._instances.values()]
    assert [i.state for i in saved] == [State.PENDING]
    h.run(5, 10)  # back to ok: lost with the crash
    hosts = list(h.engine._hosts.values())
    again = AlertEngine(h.clock, EngineSettings(repeat_interval_s=0))
    again.set_rules([rule_from_dict(cpu_rule(**{"for": "30s"}))])
    h.clock.advance(30)
    again.restore(saved, hosts)
    h.engine = again
    h.run(25, 95)  # breaching again, but for 20 s only since its first sample after the restart
    assert h.sent == []
    assert [a.state for a in again.active()] == [State.PENDING]
    h.run(10, 95)  # 30 s held: now it fires
    assert h.kinds() == [Kind.FIRING]


def test_restart_after_downtime_does_not_declare_every_host_silent() -> None:
    h = Harness([{"id": "down", "kind": "absent", "intervals": 3}])
    for _ in range(3):
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.feed("b", CPU, 1)
    hosts = list(h.engine._hosts.values())
    h.clock.advance(600)  # the server was down for 10 minutes
    again = AlertEngine(h.clock)
    again.set_rules([rule_from_dict({"id": "down", "kind": "absent", "intervals": 3})])
    again.restore([], hosts)
    h.engine = again
    h.tick()
    assert h.sent == []
    for _ in range(4):  # "a" comes back, "b" does not
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.tick()
    assert [(n.kind, [v.host for v in n.alerts]) for n in h.sent] == []
    for _ in range(8):  # group_wait 30 s
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.tick()
    assert [(n.kind, [v.host for v in n.alerts]) for n in h.sent] == [(Kind.FIRING, ["b"])]
    h.engine.forget_host("b")
    assert h.engine.active() == []


def test_host_back_within_group_wait_is_never_announced() -> None:
    h = Harness([{"id": "down", "kind": "absent", "intervals": 3, "group_wait": "30s"}])
    for _ in range(3):
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.tick()
    for _ in range(4):  # 20 s silent: firing (15 s) but inside the 30 s group wait
        h.clock.advance(5)
        h.tick()
    assert [i.state for i in h.engine.active()] == [State.FIRING]
    for _ in range(20):
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.tick()
    assert h.sent == []
    assert h.engine.active() == []


def test_grouped_alert_not_yet_sent_is_sent_after_a_restart() -> None:
    h = Harness([{"id": "down", "kind": "absent", "intervals": 3, "group_wait": "30s"}])
    for _ in range(3):
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.tick()
    for _ in range(4):
        h.clock.advance(5)
        h.tick()
    saved = list(h.engine._instances.values())
    hosts = list(h.engine._hosts.values())
    again = AlertEngine(h.clock)
    again.set_rules([rule_from_dict({"id": "down", "kind": "absent", "intervals": 3})])
    again.restore(saved, hosts)
    h.engine = again
    for _ in range(10):
        h.clock.advance(5)
        h.tick()
    assert [(n.kind, [v.host for v in n.alerts]) for n in h.sent] == [(Kind.FIRING, ["a"])]


def test_a_new_alert_is_announced_at_observe_while_others_wait_in_a_group_or_a_window() -> None:
    """Issue 18, engine side: the first notification of a new alert is in the outbox as soon
    as its sample is observed: no tick, no clock step, whatever other alerts are waiting
    for (a grouped rule's group_wait, a flapping alert's dedup window, a silence)."""
    grouped = {"id": "mem", "metric": "memory_usage_percent", "critical": 90, "group_wait": "30s"}
    h = Harness([cpu_rule(), grouped], dedup_window_s=300, repeat_interval_s=0)
    h.feed("db-1", "memory_usage_percent", 95)  # collected for 30 s, not sent yet
    h.feed("h1", CPU, 95)
    h.feed("h1", CPU, 10)
    h.feed("h1", CPU, 95)  # flapping: its next firing waits for the window
    h.engine.set_silences(
        {"s": SilenceSpec.model_validate({"hosts": ["h2"], "ends_at": "2999-01-01T00:00:00Z"})}
    )
    h.feed("h2", CPU, 95)  # silenced: not sent
    assert [(n.rule_id, n.alerts[0].host) for n in h.sent] == [("cpu", "h1")]
    h.feed("h3", CPU, 97)  # the new alert: announced at once
    assert [(n.kind, n.rule_id, n.alerts[0].host) for n in h.sent[1:]] == [
        (Kind.FIRING, "cpu", "h3")
    ]


def test_a_tick_still_ends_the_stopped_reporting_alert_of_a_host_that_counts_as_seen() -> None:
    """A tick skips the hosts that report and have no alert of the rule; one that has an
    alert is still evaluated: after a restart every host counts as seen, which resolves its
    firing "stopped reporting" alert at the first tick."""
    h = Harness([{"id": "down", "kind": "absent", "intervals": 3}], dedup_window_s=0)
    for _ in range(3):
        h.clock.advance(5)
        h.feed("a", CPU, 1)
        h.feed("b", CPU, 1)
        h.tick()
    for _ in range(12):  # "a" silent for a minute: firing, sent after the group wait (30 s)
        h.clock.advance(5)
        h.feed("b", CPU, 1)
        h.tick()
    assert [(n.kind, [v.host for v in n.alerts]) for n in h.sent] == [(Kind.FIRING, ["a"])]
    saved = list(h.engine._instances.values())
    again = AlertEngine(h.clock, EngineSettings(dedup_window_s=0))
    again.set_rules([rule_from_dict({"id": "down", "kind": "absent", "intervals": 3})])
    again.restore(saved, list(h.engine._hosts.values()))
    h.engine = again
    h.clock.advance(1)
    h.tick()
    [alert] = saved
    assert h.engine.get(alert.id) is not None
    assert h.engine.get(alert.id).state is State.RESOLVED  # type: ignore[union-attr]
    assert h.engine.active() == []
