"""The service on a real SQLite file: persistence, restart without re-notifying, durable queue,
default rules, and alerts.yml loading."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alert_receivers import LOOPBACK_ALLOW, HttpReceiver

from hostpulse.alerts import service as service_module
from hostpulse.alerts.clock import ManualClock
from hostpulse.alerts.config import load_config, parse_config
from hostpulse.alerts.exceptions import ConfigError
from hostpulse.alerts.repository import AlertRepository, HistoryQuery
from hostpulse.alerts.service import AlertService
from hostpulse.store.db import make_engine

CPU = "cpu_busy_percent"


def config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "dedup_window": "5m",
        "repeat_interval": 0,
        "create_default_rules": False,
        "allow_networks": list(LOOPBACK_ALLOW),
        "retry": {"initial": "20ms", "max": "50ms", "attempts": 50},
        "channels": [{"id": "hook", "type": "webhook", "url": url}],
        "rules": [{"id": "cpu", "metric": CPU, "warning": 80, "critical": 90}],
        **extra,
    }


def run_with(
    db: Path | str,
    cfg: dict[str, Any],
    clock: ManualClock,
    body: Callable[[AlertService], Awaitable[Any]],
) -> Any:
    async def main() -> Any:
        # a path: a SQLite file; else a database URL (the database_url fixture)
        engine = make_engine(db if isinstance(db, str) else f"sqlite+aiosqlite:///{db}")
        await AlertRepository(engine).create_tables()
        service = AlertService(engine, parse_config(cfg, {}), clock=clock, run_ticker=False)
        await service.start()
        try:
            return await body(service)
        finally:
            await service.stop()
            await engine.dispose()

    return asyncio.run(main())


async def feed(
    service: AlertService, clock: ManualClock, value: float, seconds: int, join: bool = True
) -> None:
    for _ in range(seconds // 5):
        clock.advance(5)
        service.observe("web-1", {"env": "prod"}, clock.now_ms(), [(CPU, (), value)])
        await service.tick()
    if join:
        await service.dispatcher.join()


def test_restart_mid_incident_sends_nothing_extra(
    database_url: str, http_receiver: HttpReceiver
) -> None:
    db, clock = database_url, ManualClock()
    cfg = config(http_receiver.url)

    async def first(service: AlertService) -> None:
        await feed(service, clock, 95, 60)

    run_with(db, cfg, clock, first)
    assert [r.json()["kind"] for r in http_receiver.wait_for(1)] == ["firing"]

    async def second(service: AlertService) -> list[dict[str, Any]]:
        assert [a.host for a in service.active()] == ["web-1"]
        await feed(service, clock, 95, 600)
        await feed(service, clock, 10, 30)
        return await service.history(HistoryQuery(host="web-1"))

    rows = run_with(db, cfg, clock, second)
    assert [r.json()["kind"] for r in http_receiver.wait_for(2)] == ["firing", "resolved"]
    assert [(r["from_state"], r["to_state"]) for r in reversed(rows)] == [
        ("ok", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]


def test_queued_notification_survives_a_restart(
    database_url: str, http_receiver: HttpReceiver
) -> None:
    db, clock = database_url, ManualClock()
    http_receiver.statuses = [503] * 3
    cfg = config(http_receiver.url, retry={"initial": "10s", "max": "10s", "attempts": 5})

    async def first(service: AlertService) -> None:
        await feed(service, clock, 95, 10, join=False)
        await asyncio.to_thread(http_receiver.wait_for, 1)

    # stops while the only attempt failed and the retry is 10 s away
    run_with(db, cfg, clock, lambda s: asyncio.wait_for(first(s), 10))
    http_receiver.statuses = []

    async def second(service: AlertService) -> list[dict[str, Any]]:
        await service.dispatcher.join()
        return await service.repo.notifications()

    rows = run_with(db, cfg, clock, second)
    bodies = [r.json() for r in http_receiver.wait_for(2)]
    assert [b["kind"] for b in bodies] == ["firing", "firing"]
    assert [(r["status"], r["kind"]) for r in rows] == [("sent", "firing")]


def test_every_attempt_is_recorded(database_url: str, http_receiver: HttpReceiver) -> None:
    db, clock = database_url, ManualClock()
    http_receiver.statuses = [500, 500]

    async def body(service: AlertService) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        await feed(service, clock, 95, 10)
        return await service.repo.attempts(), await service.repo.notifications()

    attempts, rows = run_with(db, config(http_receiver.url), clock, body)
    assert [(a["attempt"], a["ok"], a["status"]) for a in attempts] == [
        (1, False, 500),
        (2, False, 500),
        (3, True, None),
    ]
    # the last attempt and the outcome are written together: the row says both
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [("sent", 3, None)]
    assert {a["notification_id"] for a in attempts} == {rows[0]["id"]}


def test_default_rules_are_created_once(database_url: str, http_receiver: HttpReceiver) -> None:
    db, clock = database_url, ManualClock()
    cfg = config(http_receiver.url, rules=[], create_default_rules=True)

    async def first(service: AlertService) -> list[str]:
        ids = sorted(e.id for e in service.rules())
        await service.delete_rule("cpu_high")
        return ids

    assert run_with(db, cfg, clock, first) == [
        "cpu_high",
        "disk_full",
        "disk_io_wait",
        "host_down",
        "memory_high",
    ]

    async def second(service: AlertService) -> list[str]:
        return sorted(e.id for e in service.rules())

    assert "cpu_high" not in run_with(db, cfg, clock, second)


def test_default_thresholds_match_the_seeds(tmp_path: Path, http_receiver: HttpReceiver) -> None:
    async def body(service: AlertService) -> dict[str, tuple[Any, ...]]:
        return {
            e.id: (getattr(e.spec, "metric", None), getattr(e.spec, "warning", None),
                   getattr(e.spec, "critical", None))
            for e in service.rules()
        }  # fmt: skip

    got = run_with(
        tmp_path / "a.db",
        config(http_receiver.url, rules=[], create_default_rules=True),
        ManualClock(),
        body,
    )
    assert got["cpu_high"] == (CPU, 80, 90)
    assert got["memory_high"] == ("memory_usage_percent", 85, 95)
    assert got["disk_full"] == ("filesystem_usage_percent", 80, 90)
    assert got["disk_io_wait"] == ("disk_await_seconds", 0.1, None)


def test_alerts_yml_with_env_substitution(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(
        "dedup_window: ${DEDUP:-2m}\n"
        "channels:\n"
        "  - id: team\n"
        "    type: slack\n"
        "    url: ${SLACK_URL}\n"
        "rules:\n"
        "  - id: load\n"
        "    metric: cpu_load1\n"
        "    warning: 8\n"
        "    for: 5m\n"
    )
    cfg = load_config(path, {"SLACK_URL": "https://hooks.slack.com/services/T/B/X"})
    assert cfg.dedup_window == 120
    assert cfg.channels[0].url == "https://hooks.slack.com/services/T/B/X"  # type: ignore[union-attr]
    assert cfg.rules[0].for_ == 300  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"channels\[0\]\.url: environment variable SLACK_URL"):
        load_config(path, {})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dedup_windw": "5m"}, r"dedup_windw: Extra inputs are not permitted"),
        ({"dedup_window": "5 minutes"}, r"dedup_window: .*invalid duration"),
        ({"rules": [{"id": "x", "metric": "cpu_nope", "warning": 1}]},
         r"rules\[0\]\.metric: .*unknown metric 'cpu_nope'"),
        ({"rules": [{"id": "x", "metric": CPU}]}, r"rules\[0\]: .*'warning' or a 'critical'"),
        ({"rules": [{"id": "x", "metric": CPU, "warning": 90, "critical": 80}]},
         r"critical \(80.0\) must be at or above warning"),
        ({"rules": [{"id": "x", "kind": "magic"}]}, r"rules\[0\]: 'kind' must be one of"),
        ({"channels": [{"id": "c", "type": "pager"}]}, r"channels\[0\]"),
        ({"channels": [{"id": "c", "type": "email", "host": "h", "sender": "a@b", "to": []}]},
         r"channels\[0\]\.to"),
        ({"allow_networks": ["10.0.0.0/33"]}, r"allow_networks.*not an IP address"),
    ],
)  # fmt: skip
def test_bad_alerts_yml_names_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, {})


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "alerts.yml"
    cfg = load_config(
        example,
        {"SMTP_PASSWORD": "pw", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B1/abc"},
    )
    assert {c.id for c in cfg.channels} == {"ops-mail", "team-slack"}
    assert {r.kind for r in cfg.rules} == {"threshold", "compound", "forecast"}
    assert cfg.silences[0].recurring is not None


def test_ten_hosts_stopping_together_reach_the_receiver_as_one_request(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    clock = ManualClock()
    cfg = config(http_receiver.url, rules=[{"id": "down", "kind": "absent", "intervals": 3}])
    hosts = [f"node-{i}" for i in range(10)]

    async def body(service: AlertService) -> None:
        for _ in range(4):
            clock.advance(5)
            for h in hosts:
                service.observe(h, {}, clock.now_ms(), [(CPU, (), 5.0)])
            await service.tick()
        for _ in range(20):  # 100 s of silence
            clock.advance(5)
            await service.tick()
        await service.dispatcher.join()

    run_with(tmp_path / "a.db", cfg, clock, body)
    (req,) = http_receiver.wait_for(1)
    assert sorted(a["host"] for a in req.json()["alerts"]) == hosts
    assert req.json()["summary"] == (
        "[CRITICAL] down on node-0, node-1, node-2, node-3, node-4 and 5 more"
    )


def test_an_invalid_stored_channel_is_skipped_and_logged_without_its_secret(
    database_url: str, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    from hostpulse.alerts import models

    db = database_url
    secret = "smtp-secret-" + "9f3c1a7e5b"

    async def store_a_broken_channel(service: AlertService) -> None:
        spec = {"id": "mail", "type": "email", "host": "smtp.example.com", "password": secret}
        await service.repo.put_spec(models.channels, "mail", spec, "api", 1)  # no sender, no to

    clock = ManualClock(1_000_000)
    run_with(db, config(http_receiver.url), clock, store_a_broken_channel)
    with caplog.at_level("ERROR", logger="hostpulse.alerts.service"):
        ids = run_with(db, config(http_receiver.url), clock, lambda s: _ids(s))
    assert ids == ["hook"]
    (record,) = [r for r in caplog.records if r.getMessage() == "stored channel is invalid"]
    assert record.id == "mail" and "sender" in record.error  # type: ignore[attr-defined]
    assert secret not in record.error  # type: ignore[attr-defined]


async def _ids(service: AlertService) -> list[str]:
    return [e.id for e in service.channels()]


def test_a_new_alerts_first_notification_waits_for_no_database_other_alert_or_timer(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """Issue 18: at fleet scale the store's writes hold SQLite's write lock for seconds, and
    notifications waited for it. Here another connection holds the lock (as the store's
    compaction does) while two hosts breach; the clock never moves and nothing ticks. Both
    notifications must reach the receiver while the lock is held (the second not queued
    behind the first one's record), and be recorded once the lock is released."""
    db, clock = tmp_path / "hp.db", ManualClock()

    async def main() -> tuple[list[Any], list[Any], list[dict[str, Any]], list[dict[str, Any]]]:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")  # the store's pragmas: WAL, 10 s busy
        await AlertRepository(engine).create_tables()
        service = AlertService(
            engine, parse_config(config(http_receiver.url), {}), clock=clock, run_ticker=False
        )
        await service.start()
        holder = sqlite3.connect(db, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long store write has it
            service.observe("web-1", {}, clock.now_ms(), [(CPU, (), 95.0)])
            first = await asyncio.to_thread(http_receiver.wait_for, 1, 8.0)
            service.observe("web-2", {}, clock.now_ms(), [(CPU, (), 96.0)])
            both = await asyncio.to_thread(http_receiver.wait_for, 2, 8.0)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        try:
            await service.flush()
            await service.dispatcher.join()
            rows = await service.repo.notifications()
            attempts = await service.repo.attempts()
        finally:
            await service.stop()
            await engine.dispose()
        return [r.json()["alerts"][0]["host"] for r in first], both, rows, attempts

    first, both, rows, attempts = asyncio.run(main())
    assert first == ["web-1"]
    assert [r.json()["alerts"][0]["host"] for r in both] == ["web-1", "web-2"]
    # nothing could be written while the lock was held; once it is released both are recorded
    assert sorted((r["status"], r["attempts"]) for r in rows) == [("sent", 1), ("sent", 1)]
    assert [(a["ok"], a["notification_id"] is not None) for a in attempts] == [(True, True)] * 2


MEM = "memory_usage_percent"


def _count_saves(service: AlertService) -> tuple[list[int], asyncio.Event]:
    """Wrap the repository's save: one entry (the transitions saved) per committed
    transaction, and an event set at the first."""
    calls: list[int] = []
    saved = asyncio.Event()
    save = service.repo.save_state

    async def counted(*args: Any, **kwargs: Any) -> list[int]:
        ids = await save(*args, **kwargs)
        calls.append(len(args[2]))
        saved.set()
        return ids

    service.repo.save_state = counted  # type: ignore[method-assign]
    return calls, saved


async def _turns(n: int = 5) -> None:
    """Let the service's flusher run (it wakes on the engine's changes)."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_changes_that_send_nothing_share_one_save_and_survive_a_restart(
    database_url: str, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "_STATE_SAVE_S", 3600.0)  # only flush saves here
    db, clock = database_url, ManualClock()
    rule = {"id": "cpu", "metric": CPU, "warning": 80, "critical": 90, "for": "1m"}
    cfg = config(http_receiver.url, rules=[rule])

    async def first(service: AlertService) -> list[int]:
        calls, _ = _count_saves(service)
        for value in (95, 10, 95):  # pending, ok, pending: nothing to send
            clock.advance(5)
            service.observe("web-1", {}, clock.now_ms(), [(CPU, (), value)])
            await _turns()
        assert calls == []
        await service.flush()
        return list(calls)  # (stopping saves the hosts' last-seen too)

    assert run_with(db, cfg, clock, first) == [3]  # one transaction, every transition

    async def second(service: AlertService) -> tuple[list[str], list[dict[str, Any]]]:
        states = [a.state.value for a in service.active()]
        return states, await service.history(HistoryQuery(host="web-1"))

    states, rows = run_with(db, cfg, clock, second)
    assert states == ["pending"]
    assert [(r["from_state"], r["to_state"]) for r in reversed(rows)] == [
        ("ok", "pending"),
        ("pending", "ok"),
        ("ok", "pending"),
    ]
    assert http_receiver.requests == []


def test_changes_that_send_nothing_are_saved_without_a_flush(
    database_url: str, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "_STATE_SAVE_S", 0.01)
    db, clock = database_url, ManualClock()
    rule = {"id": "cpu", "metric": CPU, "warning": 80, "critical": 90, "for": "1m"}

    async def body(service: AlertService) -> list[str]:
        _, saved = _count_saves(service)
        clock.advance(5)
        service.observe("web-1", {}, clock.now_ms(), [(CPU, (), 95)])
        await saved.wait()  # the flusher's timer saves it; no tick, no flush
        instances, _ = await service.repo.load_state()
        return [i.state.value for i in instances]

    cfg = config(http_receiver.url, rules=[rule])
    assert run_with(db, cfg, clock, lambda s: asyncio.wait_for(body(s), 30)) == ["pending"]


def test_the_history_read_after_a_pushed_change_has_that_change(
    database_url: str, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fleet page re-reads the history when the live feed tells it of a change; the
    # change's row must be there even though changes that send nothing are saved later
    monkeypatch.setattr(service_module, "_STATE_SAVE_S", 3600.0)
    db, clock = database_url, ManualClock()
    rule = {"id": "cpu", "metric": CPU, "warning": 80, "critical": 90, "for": "1m"}

    async def body(service: AlertService) -> list[tuple[str, str]]:
        told = asyncio.Event()
        service.listeners.append(lambda changed, removed: told.set())
        clock.advance(5)
        service.observe("web-1", {}, clock.now_ms(), [(CPU, (), 95)])
        await asyncio.wait_for(told.wait(), 30)
        rows = await service.history(HistoryQuery(host="web-1"))
        return [(r["from_state"], r["to_state"]) for r in rows]

    cfg = config(http_receiver.url, rules=[rule])
    assert run_with(db, cfg, clock, body) == [("ok", "pending")]


def test_a_notification_is_saved_at_once_with_the_changes_before_it(
    database_url: str, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "_STATE_SAVE_S", 3600.0)
    db, clock = database_url, ManualClock()
    rules = [
        {"id": "cpu", "metric": CPU, "warning": 80, "critical": 90},
        {"id": "mem", "metric": MEM, "warning": 80, "critical": 90, "for": "1m"},
    ]

    async def body(service: AlertService) -> tuple[list[int], list[tuple[str, str]], list[str]]:
        calls, saved = _count_saves(service)
        clock.advance(5)
        service.observe("web-1", {}, clock.now_ms(), [(MEM, (), 95)])  # pending: waits
        await _turns()
        service.observe("web-1", {}, clock.now_ms(), [(CPU, (), 95)])  # firing: sent
        await saved.wait()  # no tick, no flush: the flusher saves at once
        await service.dispatcher.join()
        instances, _ = await service.repo.load_state()
        kinds = [n["kind"] for n in await service.repo.notifications()]
        return list(calls), sorted((i.rule_id, i.state.value) for i in instances), kinds

    cfg = config(http_receiver.url, rules=rules)
    calls, saved, kinds = run_with(db, cfg, clock, lambda s: asyncio.wait_for(body(s), 30))
    assert calls == [3]  # mem ok->pending, cpu ok->pending->firing: one transaction
    assert saved == [("cpu", "firing"), ("mem", "pending")]
    assert kinds == ["firing"]
    assert [r.json()["kind"] for r in http_receiver.wait_for(1)] == ["firing"]
