"""The facade the server uses: wires engine, repository and dispatcher, owns the background
tasks, and offers the operations behind the /alerts API.

Server wiring (at merge)::

    service = AlertService(store_engine, load_config(path, os.environ))
    await service.start()                      # app lifespan
    app.state.alerts = service
    service.observe(host_id, labels, ts_ms, samples)   # after each durable ingest batch
    await service.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.alerts import models
from hostpulse.alerts.channels import (
    MASK,
    AnyChannelSpec,
    build_channel,
    channel_from_dict,
    unmask,
)
from hostpulse.alerts.channels.email import EmailSpec
from hostpulse.alerts.claims import ClaimedSender, NotificationClaims
from hostpulse.alerts.clock import Clock, SystemClock
from hostpulse.alerts.config import AlertsConfig, format_errors
from hostpulse.alerts.dispatch import Attempt, Dispatcher, Job, RetryPolicy
from hostpulse.alerts.engine import AlertEngine, EngineSettings, Outbox
from hostpulse.alerts.exceptions import (
    ConfigError,
    ConflictError,
    NotFoundError,
    ResolutionError,
    UnsafeTargetError,
)
from hostpulse.alerts.net import Resolver, SafeHttp, TargetGuard
from hostpulse.alerts.repository import AlertRepository, HistoryQuery
from hostpulse.alerts.rules import default_rules
from hostpulse.alerts.schema import AnyRule, SilenceSpec, rule_from_dict, rule_to_dict
from hostpulse.alerts.types import (
    AlertInstance,
    HostDirectory,
    HostSeen,
    Kind,
    Notification,
    Sample,
    State,
    Transition,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
__all__ = ["MASK", "AlertListener", "AlertService", "Entry"]
_SEEDED = "default_rules_created"
_HOSTS_SAVE_MS = 30_000
_NAMES_WAIT_S = 0.5
_STATE_SAVE_S = 1.0
"""At most this long between a state change that sends nothing (pending, ok, a resolution
the dedup window holds back, history rows) and its save; changes arriving meanwhile share one
transaction. A notification's save, ``flush`` (every tick, acknowledgements, stop) and the
changes gathered until then are saved at once."""

AlertListener = Callable[[Sequence[AlertInstance] | None, Sequence[str]], None]
"""Told of alert changes, synchronously on the event loop: ``(changed, removed_ids)``, where
``changed`` is None when any alert may look different (a rule or silence changed)."""


@dataclass(slots=True)
class _Unsaved:
    """What the engine decided that no save has taken yet, merged: an alert's latest state
    (or its removal) once, every transition, each host's latest last-seen."""

    changed: dict[str, AlertInstance] = field(default_factory=dict)
    removed: dict[str, None] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    hosts: dict[str, HostSeen] = field(default_factory=dict)
    items: list[tuple[str, Notification]] = field(default_factory=list)
    rows: list[asyncio.Future[int | None]] = field(default_factory=list)

    def add(
        self,
        out: Outbox,
        items: list[tuple[str, Notification]],
        rows: list[asyncio.Future[int | None]],
    ) -> None:
        for inst in out.changed:
            self.removed.pop(inst.id, None)
            self.changed[inst.id] = inst
        for alert_id in out.removed:
            self.changed.pop(alert_id, None)
            self.removed[alert_id] = None
        self.transitions += out.transitions
        for seen in out.hosts:
            self.hosts[seen.host] = seen
        self.items += items
        self.rows += rows

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.transitions or self.hosts or self.items)


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    id: str
    spec: T
    source: str  # default, config or api
    created_ms: int
    updated_ms: int


class _Log:
    def __init__(self, repo: AlertRepository) -> None:
        self._repo = repo

    async def record_attempt(self, attempt: Attempt) -> None:
        await self._repo.record_attempt(attempt)

    async def finish(self, notification_id: int | None, ok: bool, error: str | None) -> None:
        if notification_id is not None:
            await self._repo.finish(notification_id, ok, error)

    async def record_last(self, attempt: Attempt, ok: bool, error: str | None) -> None:
        await self._repo.record_attempt(attempt, (ok, error))


class AlertService:
    def __init__(
        self,
        db: AsyncEngine,
        config: AlertsConfig | None = None,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        run_ticker: bool = True,
        hosts: HostDirectory | None = None,
        owns: Callable[[str], bool] | None = None,
        claims: NotificationClaims | None = None,
    ) -> None:
        """``hosts``: where hostnames come from (notifications and answers name hosts by
        them, with the id alongside); without it, hosts are named by their ids.

        ``owns`` and ``claims`` (several replicas on one database): this process evaluates
        only the hosts ``owns`` accepts (``rebalance`` when that changes), announces only
        what ``claims`` grants, and reads the active alerts from the database."""
        self.config = config or AlertsConfig()
        self.hosts = hosts
        self.clock = clock or SystemClock()
        self.repo = AlertRepository(db)
        self.engine = AlertEngine(
            self.clock,
            EngineSettings(self.config.dedup_window, self.config.repeat_interval),
        )
        self.guard = TargetGuard(self.config.allow_networks, resolver)
        self.http = SafeHttp(self.guard, timeout=self.config.http_timeout, transport=transport)
        retry = self.config.retry
        self.dispatcher = Dispatcher(
            self.clock,
            _Log(self.repo),
            RetryPolicy(initial_s=retry.initial, max_s=retry.max, max_attempts=retry.attempts),
            sleep=sleep,
        )
        self._run_ticker = run_ticker
        self._rules: dict[str, Entry[AnyRule]] = {}
        self._channels: dict[str, Entry[AnyChannelSpec]] = {}
        self._silences: dict[str, Entry[SilenceSpec]] = {}
        self._wake = asyncio.Event()
        self._save_tail: asyncio.Task[None] | None = None
        self._unsaved = _Unsaved()
        self._save_due: asyncio.TimerHandle | None = None
        self._take_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hosts_saved_ms = 0
        self.owns = owns
        self.sender = ClaimedSender(self.dispatcher, claims)
        self.changed: Callable[[], None] = lambda: None
        """Called after rules, channels or silences changed here (the cluster tells the
        other replicas, which then ``reload``)."""
        self.forward_ack: Callable[[str, str], None] = lambda alert_id, by: None
        """Hands an acknowledgement of an alert held by another replica to it."""
        self.listeners: list[AlertListener] = []
        """Told of every alert that fired, changed or ended (the live feed); cheap, no I/O."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        now = self.clock.now_ms()
        repo = self.repo
        if self.config.create_default_rules and await repo.get_meta(_SEEDED) is None:
            for rule in default_rules():
                await repo.put_spec(models.rules, rule.id, rule_to_dict(rule), "default", now)
            await repo.set_meta(_SEEDED, str(now))
        for ch in self.config.channels:
            await repo.put_spec(models.channels, ch.id, _dump(ch), "config", now)
        for rule in self.config.rules:
            await repo.put_spec(models.rules, rule.id, rule_to_dict(rule), "config", now)
        for s in self.config.silences:
            spec = s.model_dump(mode="json", exclude={"id"})
            await repo.put_spec(models.silences, s.id, spec, "config", now)
        await self._load()
        instances, hosts = await repo.load_state()
        self.engine.restore(*self._mine(instances, hosts))
        self._loop = asyncio.get_running_loop()
        self.engine.on_output = self._signal
        await self._resubmit(lambda host: self.owns is None or self.owns(host))
        self._tasks.append(asyncio.create_task(self._flusher(), name="alerts-flush"))
        if self._run_ticker:
            self._tasks.append(asyncio.create_task(self._ticker(), name="alerts-tick"))
        logger.info(
            "alerts started",
            extra={"rules": len(self._rules), "channels": len(self._channels)},
        )

    def _mine(
        self, instances: list[AlertInstance], hosts: list[HostSeen]
    ) -> tuple[list[AlertInstance], list[HostSeen]]:
        owns = self.owns
        if owns is None:
            return instances, hosts
        return [i for i in instances if owns(i.host)], [h for h in hosts if owns(h.host)]

    async def _resubmit(self, wanted: Callable[[str], bool]) -> None:
        """Hand the notifications still queued in the database for hosts ``wanted`` accepts
        to their channels (those of a process that stopped before sending them)."""
        for queued in await self.repo.queued_notifications():
            n = queued.notification
            if n.alerts and not any(wanted(v.host) for v in n.alerts):
                continue
            if not n.alerts and self.owns is not None:
                continue  # a test send: its own request's business
            allowed = await self.sender.allowed(n)
            if allowed is not None:  # else sent, or being sent by a live replica
                self.sender.submit(allowed, [Job(queued.id, queued.channel_id, allowed)])

    async def rebalance(self) -> None:
        """The hosts this process owns changed (``owns``): save what the engine decided,
        let go of the hosts now owned by another replica (their state stays in the database
        for it) and take up the ones gained from the database, with their queued
        notifications."""
        owns = self.owns
        if owns is None:
            return
        await self.flush(save_hosts=True)
        held = self.engine.release(owns)
        instances, hosts = await self.repo.load_state()
        gained_instances = [i for i in instances if owns(i.host) and i.host not in held]
        gained_hosts = [h for h in hosts if owns(h.host) and h.host not in held]
        self.engine.restore(gained_instances, gained_hosts)
        gained = {i.host for i in gained_instances} | {h.host for h in gained_hosts}
        if gained:
            await self._resubmit(gained.__contains__)
        logger.info(
            "alert ownership changed",
            extra={"hosts": len(self.engine.held_hosts()), "gained": len(gained)},
        )

    async def reload(self) -> None:
        """Rules, channels or silences changed on another replica: read them again."""
        await self._load()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.engine.on_output = None
        await self.flush(save_hosts=True)
        await self.dispatcher.close()
        await self.http.aclose()

    async def _load(self) -> None:
        self._rules = {}
        for row in await self.repo.list_specs(models.rules):
            try:
                rule = rule_from_dict(row.spec)
            except ValueError as exc:
                logger.error("stored rule is invalid", extra={"rule": row.id, "error": _why(exc)})
                continue
            self._rules[row.id] = Entry(row.id, rule, row.source, row.created_ms, row.updated_ms)
        self._channels = {}
        for row in await self.repo.list_specs(models.channels):
            try:
                ch = channel_from_dict(row.spec)
            except ValueError as exc:  # the reason only: the stored input holds secrets
                logger.error("stored channel is invalid", extra={"id": row.id, "error": _why(exc)})
                continue
            self._channels[row.id] = Entry(row.id, ch, row.source, row.created_ms, row.updated_ms)
        self._silences = {}
        for row in await self.repo.list_specs(models.silences):
            spec = SilenceSpec.model_validate(row.spec)
            self._silences[row.id] = Entry(row.id, spec, row.source, row.created_ms, row.updated_ms)
        self._apply()
        self._tell(None, ())
        for entry in self._rules.values():
            missing = [c for c in entry.spec.channels if c not in self._channels]
            if missing:
                logger.warning(
                    "rule names unknown channels", extra={"rule": entry.id, "channels": missing}
                )

    def _apply(self) -> None:
        self.engine.set_rules(e.spec for e in self._rules.values())
        self.engine.set_silences({k: e.spec for k, e in self._silences.items()})
        self.dispatcher.set_channels(
            {
                k: build_channel(e.spec, self.http, self.clock)
                for k, e in self._channels.items()
                if e.spec.enabled
            }
        )

    def _signal(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _flusher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._take(save_now=False)
            except Exception:  # keep evaluating
                logger.exception("alerts flush failed")

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.evaluation_interval)
            try:
                await self.tick()
            except Exception:
                logger.exception("alerts tick failed")

    # -- the ingest side ---------------------------------------------------------------------

    @property
    def watched_metrics(self) -> frozenset[str]:
        """See ``AlertEngine.watched_metrics``: samples of other metrics need not be passed."""
        return self.engine.watched_metrics

    def observe(
        self, host: str, host_labels: dict[str, str], ts_ms: int, samples: Sequence[Sample]
    ) -> None:
        """Call after a batch is durable, on the event loop's thread (the engine is not
        thread-safe). Cheap, synchronous, never waits on the network or the database."""
        self.engine.observe(host, host_labels, ts_ms, samples)

    async def forget_host(self, host: str) -> None:
        """Call when a host is deleted: its alerts end without notification."""
        self.engine.forget_host(host)
        await self.repo.delete_host(host)
        await self.flush()

    async def tick(self, now_ms: int | None = None) -> None:
        self.engine.tick(now_ms)
        await self.flush()

    async def flush(self, *, save_hosts: bool = False) -> None:
        """Hand what the engine decided to the dispatcher and wait until it, and everything
        taken before it, is saved."""
        await self._take(save_hosts=save_hosts)
        tail = self._save_tail
        if tail is not None:
            await asyncio.shield(tail)

    async def _take(self, *, save_hosts: bool = False, save_now: bool = True) -> None:
        """Drain the engine and submit its notifications at once; their rows, the alert
        state, history and hosts are saved by a task chained after the previous save, so a
        busy database delays the record, never a notification (a crash between the send and
        the save can only repeat a notification, never lose one that the database holds).
        Without ``save_now``, changes that send nothing wait up to ``_STATE_SAVE_S`` for the
        next save (one transaction for many, not one per change)."""
        async with self._take_lock:
            now = self.clock.now_ms()
            with_hosts = save_hosts or now - self._hosts_saved_ms >= _HOSTS_SAVE_MS
            out = self.engine.drain(hosts=with_hosts)
            if out.changed or out.removed:
                self._tell(out.changed, out.removed)
            if with_hosts:
                self._hosts_saved_ms = now
            notifications = await self._named(out.notifications)
            items = [(c, n) for n in notifications for c in self._route(n)]
            if items or out.changed or out.removed or out.transitions or out.hosts:
                if self.sender.claims is not None and items:
                    notifications = await self._claimed(notifications)
                    items = [(c, n) for n in notifications for c in self._route(n)]
                loop = asyncio.get_running_loop()
                rows: list[asyncio.Future[int | None]] = [loop.create_future() for _ in items]
                jobs = [Job(None, c, n, row) for row, (c, n) in zip(rows, items, strict=True)]
                for n in notifications:
                    self.sender.submit(n, [j for j in jobs if j.notification is n])
                self._unsaved.add(out, items, rows)
            if not self._unsaved:
                return
            if save_now or self._unsaved.items:
                self._save_unsaved()
            elif self._save_due is None:
                loop = asyncio.get_running_loop()
                self._save_due = loop.call_later(_STATE_SAVE_S, self._save_unsaved)

    def _save_unsaved(self) -> None:
        """Start saving everything taken so far, after the saves before it."""
        if self._save_due is not None:
            self._save_due.cancel()
            self._save_due = None
        unsaved, self._unsaved = self._unsaved, _Unsaved()
        if unsaved:
            self._save_tail = asyncio.create_task(
                self._save(self._save_tail, unsaved, self.clock.now_ms()), name="alerts-save"
            )

    async def _claimed(self, notifications: list[Notification]) -> list[Notification]:
        """The notifications (or the part of each) this replica may announce; those no
        channel wants are neither announced nor claimed."""
        out = []
        for n in notifications:
            allowed = await self.sender.allowed(n) if self._route(n) else None
            if allowed is not None:
                out.append(allowed)
        return out

    async def current(self) -> list[AlertInstance]:
        """The active alerts: this process's own, or with ``owns`` (several replicas) every
        replica's as saved in the database."""
        if self.owns is None:
            return self.active()
        await self.flush()
        instances, _ = await self.repo.load_state()
        live = (State.PENDING, State.FIRING)
        return sorted(
            (i for i in instances if i.state in live),
            key=lambda i: (-(i.severity or 0), i.fired_at_ms or i.pending_since_ms or 0),
        )

    def _tell(self, changed: Sequence[AlertInstance] | None, removed: Sequence[str]) -> None:
        for listener in self.listeners:
            try:
                listener(changed, removed)
            except Exception:  # a listener's bug must not stop evaluation
                logger.exception("alert listener failed")

    async def host_names(self, host_ids: Iterable[str]) -> dict[str, str]:
        """Hostname by host id, for the ids the host directory knows. Bounded: a directory
        slower than ``_NAMES_WAIT_S`` leaves the rest named by their ids."""
        names: dict[str, str] = {}
        if self.hosts is None:
            return names
        try:
            async with asyncio.timeout(_NAMES_WAIT_S):
                for host_id in set(host_ids):
                    found = await self.hosts.host(host_id)
                    if found is not None and found.hostname:
                        names[host_id] = found.hostname
        except TimeoutError:
            logger.warning("host names not found in time; hosts are named by their ids")
        except Exception:
            logger.exception("host name lookup failed; hosts are named by their ids")
        return names

    async def _named(self, notifications: list[Notification]) -> list[Notification]:
        """The notifications with each alert's hostname filled in."""
        if self.hosts is None or not notifications:
            return notifications
        names = await self.host_names(v.host for n in notifications for v in n.alerts)
        if not names:
            return notifications
        return [
            replace(
                n,
                alerts=tuple(
                    replace(v, host_name=names[v.host]) if v.host in names else v for v in n.alerts
                ),
            )
            for n in notifications
        ]

    async def _save(self, after: asyncio.Task[None] | None, unsaved: _Unsaved, now: int) -> None:
        rows = unsaved.rows
        ids: list[int | None] = [None] * len(rows)
        try:
            if after is not None:
                await asyncio.wait([after])
            saved = await self.repo.save_state(
                list(unsaved.changed.values()),
                list(unsaved.removed),
                unsaved.transitions,
                list(unsaved.hosts.values()),
                unsaved.items,
                now,
            )
            ids = list(saved)
        except Exception:  # the database failing must not swallow a notification
            logger.exception("could not save alert state; the notifications are sent anyway")
        finally:
            for row, nid in zip(rows, ids, strict=True):
                if not row.done():
                    row.set_result(nid)

    def _route(self, n: Notification) -> list[str]:
        wanted = n.channels or tuple(self._channels)
        out = []
        for cid in wanted:
            entry = self._channels.get(cid)
            if entry is not None and entry.spec.enabled and entry.spec.wants(n):
                out.append(cid)
        return out

    # -- rules -------------------------------------------------------------------------------

    def rules(self) -> list[Entry[AnyRule]]:
        return list(self._rules.values())

    def rule(self, rule_id: str) -> Entry[AnyRule]:
        return _get(self._rules, rule_id, "rule")

    async def save_rule(self, rule: AnyRule, *, create: bool) -> Entry[AnyRule]:
        if create and rule.id in self._rules:
            raise ConflictError(f"a rule with id {rule.id!r} already exists")
        if not create:
            self.rule(rule.id)
        for cid in rule.channels:
            if cid not in self._channels:
                raise ConfigError(f"channels: unknown channel {cid!r}")
        await self.repo.put_spec(
            models.rules, rule.id, rule_to_dict(rule), "api", self.clock.now_ms()
        )
        await self._load()
        self.changed()
        return self.rule(rule.id)

    async def delete_rule(self, rule_id: str) -> None:
        await self._delete(models.rules, self._rules, rule_id, "rule")

    # -- channels ----------------------------------------------------------------------------

    def channels(self) -> list[Entry[AnyChannelSpec]]:
        return list(self._channels.values())

    def channel(self, channel_id: str) -> Entry[AnyChannelSpec]:
        return _get(self._channels, channel_id, "channel")

    async def save_channel(self, spec: AnyChannelSpec, *, create: bool) -> Entry[AnyChannelSpec]:
        """Create or replace a channel; a masked secret sent back keeps the stored one only
        while the target is unchanged (``channels.unmask``)."""
        if create and spec.id in self._channels:
            raise ConflictError(f"a channel with id {spec.id!r} already exists")
        stored = None if create else self.channel(spec.id).spec
        spec = unmask(spec, stored)
        await self._check_targets(spec)
        data = _dump(spec)
        await self.repo.put_spec(models.channels, spec.id, data, "api", self.clock.now_ms())
        await self._load()
        self.changed()
        return self.channel(spec.id)

    async def _check_targets(self, spec: AnyChannelSpec) -> None:
        """Refuse a channel pointing into a refused network now, not at the first alert."""
        try:
            for url in spec.targets():
                await self.guard.check_url(url)
            if isinstance(spec, EmailSpec):
                await self.guard.check_host(spec.host, spec.port)
        except UnsafeTargetError as exc:
            raise ConfigError(f"{spec.type}: {exc}") from None
        except ResolutionError as exc:  # DNS may be down for a while; sending retries
            logger.warning("channel target not resolvable now", extra={"error": str(exc)})

    async def delete_channel(self, channel_id: str) -> None:
        users = [e.id for e in self._rules.values() if channel_id in e.spec.channels]
        if users:
            raise ConflictError(f"channel {channel_id!r} is used by rules {users}")
        await self._delete(models.channels, self._channels, channel_id, "channel")

    async def test_channel(self, channel_id: str) -> Attempt:
        entry = self.channel(channel_id)
        n = Notification(
            kind=Kind.TEST,
            rule_id="test",
            rule_title="Test notification",
            severity=None,
            alerts=(),
            created_ms=self.clock.now_ms(),
            description="If you can read this, the channel works.",
        )
        channel = build_channel(entry.spec, self.http, self.clock)
        return await self.dispatcher.attempt(channel, Job(None, channel_id, n), 1)

    # -- silences ----------------------------------------------------------------------------

    def silences(self) -> list[Entry[SilenceSpec]]:
        return list(self._silences.values())

    def silence(self, silence_id: str) -> Entry[SilenceSpec]:
        return _get(self._silences, silence_id, "silence")

    async def save_silence(
        self, spec: SilenceSpec, silence_id: str | None = None
    ) -> Entry[SilenceSpec]:
        if silence_id is None:
            silence_id = uuid.uuid4().hex[:12]
        else:
            self.silence(silence_id)
        data = spec.model_dump(mode="json")
        await self.repo.put_spec(models.silences, silence_id, data, "api", self.clock.now_ms())
        await self._load()
        self.changed()
        return self.silence(silence_id)

    async def delete_silence(self, silence_id: str) -> None:
        await self._delete(models.silences, self._silences, silence_id, "silence")

    # -- alerts ------------------------------------------------------------------------------

    def active(self) -> list[AlertInstance]:
        return self.engine.active()

    async def acknowledge(self, alert_id: str, by: str) -> AlertInstance:
        """Acknowledge a firing alert. With ``owns``, an alert of a host another replica owns
        is acknowledged there (``forward_ack``; the answer shows it acknowledged)."""
        if self.owns is None or self.engine.get(alert_id) is not None:
            inst = self.engine.acknowledge(alert_id, by)
            await self.flush()
            return inst
        await self.flush()
        instances, _ = await self.repo.load_state()
        found = next((i for i in instances if i.id == alert_id), None)
        if found is None or found.state not in (State.PENDING, State.FIRING):
            raise NotFoundError(f"no active alert with id {alert_id!r}")
        if found.state is not State.FIRING:
            raise ConflictError(f"alert {alert_id!r} is {found.state.value}, not firing")
        found.acked_by, found.acked_at_ms = by, self.clock.now_ms()
        self.forward_ack(alert_id, by)
        return found

    async def acknowledge_held(self, alert_id: str, by: str) -> None:
        """Another replica forwarded an acknowledgement: apply it if this one owns the alert."""
        if self.engine.get(alert_id) is None:
            return
        with contextlib.suppress(NotFoundError, ConflictError):
            self.engine.acknowledge(alert_id, by)
            await self.flush()

    async def history(self, query: HistoryQuery) -> list[dict[str, Any]]:
        """The recorded transitions, including every one already pushed to the listeners: a
        page told of a change (the live feed) re-reads the history at once, and the change's
        row may still be waiting for its save (up to ``_STATE_SAVE_S``), so it is saved first."""
        await self.flush()
        return await self.repo.history(query)

    async def _delete(self, table: Table, items: dict[str, Any], key: str, what: str) -> None:
        _get(items, key, what)
        await self.repo.delete_spec(table, key)
        await self._load()
        self.changed()


def _get(items: dict[str, Entry[T]], key: str, what: str) -> Entry[T]:
    entry = items.get(key)
    if entry is None:
        raise NotFoundError(f"no {what} with id {key!r}")
    return entry


def _dump(spec: AnyChannelSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def _why(exc: ValueError) -> str:
    """What is wrong, without pydantic's echo of the input (a channel's password or URL)."""
    return format_errors(exc) if isinstance(exc, ValidationError) else str(exc)
