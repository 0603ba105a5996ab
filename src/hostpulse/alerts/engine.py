"""The alert state machine: ok -> pending -> firing -> resolved, and what to notify when.

``observe`` runs on the ingest path: it is synchronous, does no I/O and costs one dict lookup
for a sample no rule watches. Results accumulate in an outbox (transitions for the history,
notifications for the dispatcher, changed instances to persist) that the service drains.

Notification policy, per alert (rule + host + series):
- a new firing is sent at once, unless the same alert was last announced less than
  ``dedup_window`` ago (a flapping series), in which case it waits for the window to end;
- an escalation (warning -> critical) is sent at once; a de-escalation respects the window;
- a resolution is sent once the firing announcement is at least ``dedup_window`` old, so a
  flapping series yields at most one notification per window;
- a firing alert is repeated every ``repeat_interval`` unless acknowledged (0 disables);
- silenced alerts are not sent; when the silence ends, the current state is announced;
- rules with ``group_wait`` collect alerts and send one notification naming them all.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from hostpulse.alerts.clock import Clock
from hostpulse.alerts.evaluators import AbsentEvaluator, Evaluator, build
from hostpulse.alerts.exceptions import ConflictError, NotFoundError
from hostpulse.alerts.rules import silence_active, silence_matches, silence_until
from hostpulse.alerts.schema import AnyRule, HostSelector, Severity, SilenceSpec
from hostpulse.alerts.types import (
    AlertInstance,
    AlertView,
    HostSeen,
    Kind,
    Labels,
    Notification,
    Routed,
    Routes,
    Sample,
    State,
    Transition,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    dedup_window_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    max_sample_age_s: float = 600.0
    """Older samples (an agent replaying its buffer) update 'last seen' but not alert state."""


@dataclass(slots=True)
class Outbox:
    transitions: list[Transition]
    notifications: list[Notification]
    changed: list[AlertInstance]
    removed: list[str]
    hosts: list[HostSeen]


@dataclass(slots=True)
class _Group:
    rule_id: str
    kind: Kind
    flush_at_ms: int
    alerts: dict[str, AlertView]


class AlertEngine:
    def __init__(self, clock: Clock, settings: EngineSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or EngineSettings()
        self._rules: dict[str, AnyRule] = {}
        self._evaluators: list[Evaluator] = []
        self._absent: list[Evaluator] = []
        self._by_metric: dict[str, list[tuple[Evaluator, int, HostSelector | None]]] = {}
        self._watched: frozenset[str] = frozenset()
        self._silences: dict[str, SilenceSpec] = {}
        self._instances: dict[tuple[str, str, Labels], AlertInstance] = {}
        self._resumed: set[tuple[str, str, Labels]] = set()
        """Pending alerts loaded by ``restore``: their ``for`` counts again from their next
        sample (see there)."""
        self._by_id: dict[str, AlertInstance] = {}
        self._hosts: dict[str, HostSeen] = {}
        self._groups: dict[tuple[str, Kind], _Group] = {}
        self._transitions: list[Transition] = []
        self._notifications: list[Notification] = []
        self._changed: dict[str, AlertInstance] = {}
        self._removed: list[str] = []
        self._hosts_changed: set[str] = set()
        self.on_output: Callable[[], None] | None = None
        """Called (without arguments) whenever the outbox gains something."""
        self.evaluations: collections.Counter[str] = collections.Counter()
        """Runs of ``observe`` ("sample") and ``tick`` ("tick"), for the server's metrics."""

    # -- configuration ---------------------------------------------------------------------

    def set_rules(self, rules: Iterable[AnyRule]) -> None:
        self._rules = {r.id: r for r in rules if r.enabled}
        self._evaluators = [build(r) for r in self._rules.values()]
        self._absent = [ev for ev in self._evaluators if ev.rule.kind == "absent"]
        for ev in self._evaluators:
            if isinstance(ev, AbsentEvaluator):
                ev.alerts = self._instances  # skips hosts with nothing to change
        by_metric: dict[str, list[tuple[Evaluator, int, HostSelector | None]]] = {}
        for ev in self._evaluators:
            hosts = ev.rule.hosts
            selector = None if hosts.all and not (hosts.names or hosts.labels) else hosts
            for metric, index in ev.metrics():
                by_metric.setdefault(metric, []).append((ev, index, selector))
        self._by_metric = by_metric
        self._watched = frozenset(by_metric)
        for inst in list(self._instances.values()):
            if inst.rule_id not in self._rules:
                self._forget(inst)
        self._signal()

    @property
    def watched_metrics(self) -> frozenset[str]:
        """The metrics some rule reads; ``observe`` ignores samples of other metrics. A new
        object each time the rules change, so callers may cache by identity."""
        return self._watched

    def set_silences(self, silences: dict[str, SilenceSpec]) -> None:
        self._silences = dict(silences)

    def restore(self, instances: Iterable[AlertInstance], hosts: Iterable[HostSeen]) -> None:
        """Load persisted state (after a restart) without notifying anything.

        Hosts count as seen now: while the server was down nobody could report, so a host is
        declared silent only if it stays silent after the restart.

        A pending alert waits its whole ``for`` again, counted from its first breaching sample
        after the restart: the samples of the downtime were not seen, and a crash can lose the
        last second of unsaved changes (its return to ok among them), so the saved pending
        start does not prove the condition held since.
        """
        now = self.clock.now_ms()
        for inst in instances:
            self._instances[inst.key] = inst
            self._by_id[inst.id] = inst
            if inst.state is State.PENDING:
                self._resumed.add(inst.key)
        for seen in hosts:
            seen.last_seen_ms = max(seen.last_seen_ms, now)
            self._hosts[seen.host] = seen

    def held_hosts(self) -> set[str]:
        """The hosts this engine has state of (seen, or with alerts)."""
        return set(self._hosts) | {i.host for i in self._instances.values()}

    def release(self, keep: Callable[[str], bool]) -> set[str]:
        """Let go of every host ``keep`` refuses, silently: its alerts and last-seen stay in
        the database for the replica that now owns it. Returns the hosts still held."""
        for host in [h for h in self._hosts if not keep(h)]:
            del self._hosts[host]
        for inst in [i for i in self._instances.values() if not keep(i.host)]:
            self._instances.pop(inst.key, None)
            self._by_id.pop(inst.id, None)
            self._resumed.discard(inst.key)
        for group in self._groups.values():
            for alert_id in [k for k, v in group.alerts.items() if not keep(v.host)]:
                del group.alerts[alert_id]
        return self.held_hosts()

    def forget_host(self, host: str) -> None:
        """A host was removed: stop expecting it and drop its alerts."""
        self._hosts.pop(host, None)
        for inst in [i for i in self._instances.values() if i.host == host]:
            self._forget(inst)
        self._signal()

    # -- input -----------------------------------------------------------------------------

    def observe(
        self, host: str, host_labels: dict[str, str], ts_ms: int, samples: Sequence[Sample]
    ) -> None:
        now = self._seen(host, host_labels, ts_ms)
        if now is None:
            return
        watched = self._by_metric.get
        report = self._report
        for sample in samples:
            entries = watched(sample[0])
            if entries is None:
                continue
            _, labels, value = sample
            for ev, index, selector in entries:  # selector None: every host
                if selector is None or selector.matches(host, host_labels):
                    ev.on_sample(index, host, labels, ts_ms, value, report)
        self._reported(host, now)

    def routes(self, host: str, host_labels: dict[str, str], metric: str) -> Routes:
        """Where ``observe`` sends a sample of ``metric`` from ``host`` (with ``host_labels``):
        each rule that reads it and selects the host, as (its evaluator's ``on_sample``, the
        condition's index), in the order ``observe`` calls them. Valid until the rules change
        (``watched_metrics`` is then another object), for the same host labels."""
        return tuple(
            (ev.on_sample, index)
            for ev, index, selector in self._by_metric.get(metric, ())
            if selector is None or selector.matches(host, host_labels)
        )

    def observe_routed(
        self, host: str, host_labels: dict[str, str], ts_ms: int, samples: Sequence[Routed]
    ) -> None:
        """``observe`` with each sample's ``routes`` worked out already (once per host series
        table, by the ingest listener): the same state changes, without finding the rules of
        each sample's metric and testing their host selectors in every snapshot."""
        now = self._seen(host, host_labels, ts_ms)
        if now is None:
            return
        report = self._report
        for routes, labels, value in samples:
            for on_sample, index in routes:
                on_sample(index, host, labels, ts_ms, value, report)
        self._reported(host, now)

    def _seen(self, host: str, host_labels: dict[str, str], ts_ms: int) -> int | None:
        """Note a snapshot of ``host``; the time now when its samples count for the alert
        state, None when it is too old to."""
        now = self.clock.now_ms()
        self.evaluations["sample"] += 1
        seen = self._hosts.get(host)
        if seen is None:
            seen = self._hosts[host] = HostSeen(host, dict(host_labels), now, 5000, ts_ms)
        else:
            if 0 < ts_ms - seen.last_ts_ms < 3_600_000:
                seen.interval_ms = max(1000, ts_ms - seen.last_ts_ms)
            seen.last_ts_ms = max(seen.last_ts_ms, ts_ms)
            seen.last_seen_ms = now
            if seen.labels != host_labels:
                seen.labels = dict(host_labels)
        self._hosts_changed.add(host)
        if ts_ms < now - self.settings.max_sample_age_s * 1000:
            return None
        return now

    def _reported(self, host: str, now: int) -> None:
        """A host that reports again ends its "stopped reporting" alerts at once."""
        for ev in self._absent:
            inst = self._instances.get((ev.rule.id, host, ()))
            if inst is not None and inst.state in (State.PENDING, State.FIRING):
                self._report(ev.rule, host, (), None, 0.0, now)

    def tick(self, now_ms: int | None = None) -> None:
        """Evaluate time-driven rules, send due notifications, flush groups."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        self.evaluations["tick"] += 1
        for ev in self._evaluators:
            ev.on_tick(now, self._hosts, self._report)
        dedup_ms = int(self.settings.dedup_window_s * 1000)
        for inst in list(self._instances.values()):
            rule = self._rules.get(inst.rule_id)
            if rule is None:
                continue
            if inst.state in (State.FIRING, State.RESOLVED) or inst.notified is State.FIRING:
                self._decide(inst, rule, now)
            settled = inst.notified is not State.FIRING and inst.state in (State.OK, State.RESOLVED)
            if settled and now - max(inst.notified_at_ms, inst.updated_ms) >= dedup_ms:
                self._forget(inst)
        for key, group in list(self._groups.items()):
            if group.flush_at_ms <= now:
                del self._groups[key]
                self._flush(group, now)
        self._signal()

    # -- the state machine -------------------------------------------------------------------

    def _report(
        self,
        rule: AnyRule,
        host: str,
        labels: Labels,
        severity: Severity | None,
        value: float,
        ts_ms: int,
    ) -> None:
        key = (rule.id, host, labels)
        inst = self._instances.get(key)
        if inst is None:
            if severity is None:
                return
            inst = AlertInstance(rule.id, host, labels)
            self._instances[key] = inst
            self._by_id[inst.id] = inst
        before, before_sev = inst.state, inst.severity
        inst.value = value
        if severity is not None:
            if inst.state in (State.OK, State.RESOLVED):
                self._move(inst, State.PENDING, severity, ts_ms)
                inst.pending_since_ms = ts_ms
            for_ms = int(getattr(rule, "for_", 0.0) * 1000)
            if self._resumed and key in self._resumed:
                self._resumed.discard(key)
                if inst.state is State.PENDING:
                    inst.pending_since_ms = ts_ms
            if inst.state is State.PENDING:
                inst.severity = severity
                if ts_ms - (inst.pending_since_ms or ts_ms) >= for_ms:
                    inst.fired_at_ms, inst.resolved_at_ms = ts_ms, None
                    self._move(inst, State.FIRING, severity, ts_ms)
            elif inst.state is State.FIRING and severity != inst.severity:
                self._move(inst, State.FIRING, severity, ts_ms)
        elif inst.state is State.PENDING:
            self._resumed.discard(key)
            self._move(inst, State.OK, None, ts_ms)
        elif inst.state is State.FIRING:
            inst.resolved_at_ms = ts_ms
            self._move(inst, State.RESOLVED, inst.severity, ts_ms)
        if inst.state is not before or inst.severity is not before_sev:
            inst.updated_ms = self.clock.now_ms()
            self._changed[inst.id] = inst
            self._decide(inst, rule, self.clock.now_ms())
            self._signal()

    def _move(self, inst: AlertInstance, to: State, severity: Severity | None, ts_ms: int) -> None:
        self._transitions.append(
            Transition(
                inst.id, inst.rule_id, inst.host, inst.labels, inst.state, to, severity,
                inst.value, ts_ms,
            )
        )  # fmt: skip
        inst.state = to
        inst.severity = severity
        if to is State.OK:
            inst.pending_since_ms = None
        if to in (State.OK, State.RESOLVED):
            inst.acked_by, inst.acked_at_ms = None, None

    def silence_of(self, inst: AlertInstance, now_ms: int) -> tuple[str, int] | None:
        """The silence that mutes this alert now and when its window ends (the latest end
        if several do), or None."""
        seen = self._hosts.get(inst.host)
        labels = seen.labels if seen else {}
        found: tuple[str, int] | None = None
        for silence_id, spec in self._silences.items():
            if not silence_matches(spec, inst.rule_id, inst.host, labels):
                continue
            until = silence_until(spec, now_ms)
            if until is not None and (found is None or until > found[1]):
                found = (silence_id, until)
        return found

    def _silenced(self, inst: AlertInstance, now_ms: int) -> bool:
        if not self._silences:
            return False
        seen = self._hosts.get(inst.host)
        labels = seen.labels if seen else {}
        return any(
            silence_matches(s, inst.rule_id, inst.host, labels) and silence_active(s, now_ms)
            for s in self._silences.values()
        )

    def _due(self, inst: AlertInstance, rule: AnyRule, now: int) -> Kind | None:
        """What, if anything, the receivers should be told about this alert now."""
        dedup_ms = int(self.settings.dedup_window_s * 1000)
        since_change = now - inst.notified_at_ms
        kind: Kind | None = None
        if inst.state is State.FIRING:
            sev, told = inst.severity, inst.notified_severity
            if inst.notified is not State.FIRING:
                if inst.notified is None or since_change >= dedup_ms:
                    kind = Kind.FIRING
            elif sev is not None and told is not None and sev > told:
                kind = Kind.ESCALATED
            elif sev != told:
                if since_change >= dedup_ms:
                    kind = Kind.CHANGED
            else:
                repeat = rule.repeat_interval
                repeat_s = self.settings.repeat_interval_s if repeat is None else repeat
                due = now - inst.last_sent_ms >= repeat_s * 1000
                if repeat_s > 0 and inst.acked_by is None and due:
                    kind = Kind.REPEAT
        elif inst.notified is State.FIRING and since_change >= dedup_ms:
            kind = Kind.RESOLVED
        if kind is None or self._silenced(inst, now):
            return None
        return kind

    def _decide(self, inst: AlertInstance, rule: AnyRule, now: int) -> None:
        kind = self._due(inst, rule, now)
        if kind is None:
            return
        if rule.group_wait <= 0:
            self._mark(inst, kind, now)
            self._notifications.append(self._notification(rule, kind, [self._view(inst)], now))
            return
        # Grouped: collect now, decide again and mark when the group is sent, so an alert
        # that ends within group_wait is never announced and a crash before then loses nothing.
        group_kind = Kind.RESOLVED if kind is Kind.RESOLVED else Kind.FIRING
        group = self._groups.get((rule.id, group_kind))
        if group is None:
            flush_at = now + int(rule.group_wait * 1000)
            group = self._groups[(rule.id, group_kind)] = _Group(rule.id, kind, flush_at, {})
        group.alerts[inst.id] = self._view(inst)

    def _mark(self, inst: AlertInstance, kind: Kind, now: int) -> None:
        if kind is not Kind.REPEAT:
            inst.notified = State.RESOLVED if kind is Kind.RESOLVED else State.FIRING
            inst.notified_severity = None if kind is Kind.RESOLVED else inst.severity
            inst.notified_at_ms = now
        inst.last_sent_ms = now
        self._changed[inst.id] = inst

    def _view(self, inst: AlertInstance) -> AlertView:
        seen = self._hosts.get(inst.host)
        return AlertView(
            inst.id, inst.rule_id, inst.host, inst.labels, inst.state, inst.severity, inst.value,
            inst.fired_at_ms, inst.resolved_at_ms,
            tuple(sorted(seen.labels.items())) if seen else (),
        )  # fmt: skip

    def _flush(self, group: _Group, now: int) -> None:
        rule = self._rules.get(group.rule_id)
        if rule is None:
            return
        views = []
        for alert_id in group.alerts:
            inst = self._by_id.get(alert_id)
            if inst is None:
                continue
            kind = self._due(inst, rule, now)
            if kind is None or (kind is Kind.RESOLVED) != (group.kind is Kind.RESOLVED):
                continue
            self._mark(inst, kind, now)
            views.append(self._view(inst))
        if views:
            views.sort(key=lambda v: (v.host, v.labels))
            self._notifications.append(self._notification(rule, group.kind, views, now))

    @staticmethod
    def _notification(rule: AnyRule, kind: Kind, views: list[AlertView], now: int) -> Notification:
        severities = [v.severity for v in views if v.severity is not None]
        return Notification(
            kind=kind,
            rule_id=rule.id,
            rule_title=rule.title,
            severity=max(severities) if severities else None,
            alerts=tuple(views),
            created_ms=now,
            channels=rule.channels,
            description=rule.description,
            metric=str(getattr(rule, "metric", "")),
        )

    def _forget(self, inst: AlertInstance) -> None:
        self._instances.pop(inst.key, None)
        self._resumed.discard(inst.key)
        self._by_id.pop(inst.id, None)
        self._changed.pop(inst.id, None)
        self._removed.append(inst.id)

    # -- queries and commands ---------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str) -> AlertInstance:
        inst = self._by_id.get(alert_id)
        if inst is None:
            raise NotFoundError(f"no active alert with id {alert_id!r}")
        if inst.state is not State.FIRING:
            raise ConflictError(f"alert {alert_id!r} is {inst.state.value}, not firing")
        inst.acked_by, inst.acked_at_ms = by, self.clock.now_ms()
        self._changed[inst.id] = inst
        self._signal()
        return inst

    def active(self) -> list[AlertInstance]:
        live = (State.PENDING, State.FIRING)
        return sorted(
            (i for i in self._instances.values() if i.state in live),
            key=lambda i: (-(i.severity or 0), i.fired_at_ms or i.pending_since_ms or 0),
        )

    def get(self, alert_id: str) -> AlertInstance | None:
        return self._by_id.get(alert_id)

    def rule(self, rule_id: str) -> AnyRule | None:
        return self._rules.get(rule_id)

    def drain(self, *, hosts: bool = True) -> Outbox:
        """Take what happened since the last drain; ``hosts`` also takes the hosts seen."""
        seen = [self._hosts[h] for h in self._hosts_changed if h in self._hosts] if hosts else []
        out = Outbox(
            self._transitions,
            self._notifications,
            list(self._changed.values()),
            self._removed,
            seen,
        )
        self._transitions, self._notifications, self._removed = [], [], []
        self._changed = {}
        if hosts:
            self._hosts_changed = set()
        return out

    def _signal(self) -> None:
        if self.on_output is not None and (self._notifications or self._changed or self._removed):
            self.on_output()
