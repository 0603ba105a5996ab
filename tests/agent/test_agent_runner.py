"""The schedule: per-collector intervals, isolation of slow and failing collectors, no drift."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from hostpulse.agent.collectors.base import Reading, Sample
from hostpulse.agent.runner import Runner
from hostpulse.agent.snapshot import HostIdentity
from hostpulse.protocol import HostBatch


class Counting:
    """Returns one sample ``<name>`` whose value counts the collections."""

    def __init__(self, name: str, key: str = "cpu_load1") -> None:
        self.name = name
        self.key = key
        self.calls: list[float] = []

    def collect(self, now: float) -> Reading:
        self.calls.append(now)
        return Reading(samples=[Sample(self.key, (), float(len(self.calls)))])


class Blocking(Counting):
    """Blocks in collect until released (a hung NFS mount, a slow /proc)."""

    def __init__(self, name: str, key: str) -> None:
        super().__init__(name, key)
        self.release = threading.Event()
        self.entered = threading.Event()

    def collect(self, now: float) -> Reading:
        self.entered.set()
        self.release.wait(10)
        return super().collect(now)


class Failing(Counting):
    def __init__(self, name: str, key: str, fail_after: int = 0) -> None:
        super().__init__(name, key)
        self.fail_after = fail_after

    def collect(self, now: float) -> Reading:
        if len(self.calls) >= self.fail_after:
            raise OSError(5, "Input/output error")
        return super().collect(now)


class Sink:
    def __init__(self) -> None:
        self.batches: list[HostBatch] = []
        self.times: list[float] = []

    def put(self, batch: HostBatch) -> None:
        self.times.append(time.monotonic())
        self.batches.append(batch)


def values(batch: HostBatch) -> dict[str, float]:
    snap = batch.snapshots[0]
    return {batch.series[i].metric: v for i, v in zip(snap.series_index, snap.values, strict=True)}


@pytest.fixture
def made() -> Iterator[list[Runner]]:
    runners: list[Runner] = []
    yield runners
    for r in runners:
        r.close()


def make(made: list[Runner], collectors: list[Counting], **kw: object) -> Runner:
    periods = kw.pop("periods", {})
    assert isinstance(periods, dict)
    interval = float(kw.pop("interval", 1.0))  # type: ignore[arg-type]
    runner = Runner(
        collectors,
        interval=interval,
        interval_of=lambda name: periods.get(name, interval),
        identity=HostIdentity(host_id="h1", labels={"env": "test"}, platform="linux"),
        **kw,  # type: ignore[arg-type]
    )
    made.append(runner)
    return runner


def test_per_collector_intervals(made: list[Runner]) -> None:
    fast, slow = Counting("cpu", "cpu_load1"), Counting("disk_usage", "cpu_load5")
    runner = make(made, [fast, slow], periods={"disk_usage": 3.0}, budget=5.0)
    for t in range(7):
        runner.tick(100.0 + t)
    assert len(fast.calls) == 7
    assert len(slow.calls) == 3  # at 100, 103, 106


def test_slow_collector_does_not_delay_the_others(made: list[Runner]) -> None:
    fast, slow = Counting("cpu", "cpu_load1"), Blocking("processes", "cpu_load5")
    sink = Sink()
    runner = make(made, [fast, slow], sinks=[sink], budget=0.3)
    try:
        started = time.monotonic()
        batch = runner.tick(0.0)
        assert time.monotonic() - started < 2.0  # budget, not the slow collector
        assert values(batch) == {"cpu_load1": 1.0}
        # next tick: the slow one is still busy and is skipped, not queued twice
        batch = runner.tick(1.0)
        assert values(batch) == {"cpu_load1": 2.0}
        assert len(fast.calls) == 2
    finally:
        slow.release.set()
    deadline = time.monotonic() + 5
    while not slow.calls and time.monotonic() < deadline:
        slow.entered.wait(0.05)
    batch = runner.tick(2.0)  # free again: it runs at this tick and its reading shows up
    assert values(batch)["cpu_load5"] == 2.0
    assert len(slow.calls) == 2
    assert len(sink.batches) == 3


def test_failing_collector_is_logged_and_isolated(
    made: list[Runner], caplog: pytest.LogCaptureFixture
) -> None:
    ok, bad = Counting("cpu", "cpu_load1"), Failing("network", "cpu_load5", fail_after=1)
    runner = make(made, [ok, bad], budget=5.0)
    with caplog.at_level(logging.ERROR, logger="hostpulse.agent.runner"):
        first = runner.tick(0.0)
        second = runner.tick(1.0)
    assert values(first) == {"cpu_load1": 1.0, "cpu_load5": 1.0}
    # the failed collection keeps the last good reading for a while
    assert values(second) == {"cpu_load1": 2.0, "cpu_load5": 1.0}
    failures = [r for r in caplog.records if "collector network failed" in r.getMessage()]
    assert failures and failures[0].exc_info is not None
    # ... and drops it once it is older than three intervals
    for t in range(2, 6):
        last = runner.tick(float(t))
    assert values(last) == {"cpu_load1": 6.0}


def test_sink_failure_does_not_stop_other_sinks(made: list[Runner]) -> None:
    class Broken:
        def put(self, batch: HostBatch) -> None:
            raise RuntimeError("full")

    good = Sink()
    runner = make(made, [Counting("cpu")], sinks=[Broken(), good], budget=5.0)
    runner.tick(0.0)
    assert len(good.batches) == 1


def test_batch_carries_identity_and_sequence(made: list[Runner]) -> None:
    runner = make(made, [Counting("cpu")], budget=5.0, wall_clock=lambda: 1700000000.5)
    runner.tick(0.0)
    batch = runner.tick(1.0)
    assert batch.host.host_id == "h1"
    assert [(lb.name, lb.value) for lb in batch.host.labels] == [("env", "test")]
    assert batch.snapshots[0].timestamp_ms == 1700000000500
    assert batch.snapshots[0].sequence == 2


def test_run_follows_the_schedule_without_drift(made: list[Runner]) -> None:
    class Busy(Counting):
        def collect(self, now: float) -> Reading:
            threading.Event().wait(0.08)  # each collection costs 80 ms of wall time
            return super().collect(now)

    sink = Sink()
    interval = 0.25
    runner = make(made, [Busy("cpu")], interval=interval, sinks=[sink], budget=1.0)
    stop = threading.Event()

    def stop_after_ticks() -> None:
        deadline = time.monotonic() + 10
        while len(sink.times) < 9 and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        stop.set()

    watcher = threading.Thread(target=stop_after_ticks)
    watcher.start()
    runner.run(stop)
    watcher.join()
    assert len(sink.times) >= 9
    origin = sink.times[0]
    # "now + interval" scheduling would be 8 x 80 ms = 0.64 s late by the ninth tick
    offsets = [t - origin - k * interval for k, t in enumerate(sink.times[:9])]
    assert max(offsets) < 0.25, offsets
