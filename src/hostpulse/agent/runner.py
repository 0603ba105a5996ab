"""The schedule: each collector on its own interval, snapshots handed to the sinks.

* Ticks come from the schedule (``start + k * interval`` on a monotonic clock), never from
  "now + interval", so the agent does not drift; a tick missed while the machine was stalled is
  skipped, not bunched up.
* Every collector runs in its own worker thread. At a tick the due collectors are started and
  the runner waits for them at most ``budget`` seconds; one that is still running (or raised)
  keeps its previous reading and never delays the others. A collector still busy at its next
  due tick is skipped for that tick.
* A reading older than three of its collector's intervals (a collector that keeps failing or
  hangs) is dropped from the snapshots rather than repeated forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from hostpulse.agent.collectors.base import Collector, Reading
from hostpulse.agent.snapshot import BatchBuilder, HostIdentity, SnapshotSink
from hostpulse.protocol import HostBatch

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class _Worker:
    """One collector in its own thread; ``submit`` never blocks."""

    def __init__(
        self,
        collector: Collector,
        done: threading.Condition,
        outstanding: set[str],
        clock: Clock,
    ) -> None:
        self.collector = collector
        self.name = collector.name
        self._done = done
        self._outstanding = outstanding  # the runner's: collectors the current tick waits for
        self._clock = clock
        self._wake = threading.Event()
        self._closed = False
        self._now = 0.0
        self.busy = False
        self.reading: Reading | None = None
        self.reading_at = 0.0
        self._thread = threading.Thread(target=self._loop, name=f"collector-{self.name}")
        self._thread.daemon = True  # a hung collector must not keep the process alive

    def start(self) -> None:
        self._thread.start()

    def submit(self, now: float) -> bool:
        with self._done:
            if self.busy:
                return False
            self.busy = True
            self._now = now
            self._outstanding.add(self.name)
        self._wake.set()
        return True

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            started = self._clock()
            reading: Reading | None = None
            try:
                reading = self.collector.collect(started)
            except Exception:
                logger.exception("collector %s failed", self.name, extra={"collector": self.name})
            took = self._clock() - started
            if reading is not None:
                for problem in reading.errors:
                    logger.warning(
                        "collector %s: %s", self.name, problem, extra={"collector": self.name}
                    )
            logger.debug("collector %s took %.1f ms", self.name, took * 1000)
            with self._done:
                if reading is not None:
                    self.reading = reading
                    self.reading_at = self._now
                self.busy = False
                # wake the runner once, when the last collector it waits for is done
                if self.name in self._outstanding:
                    self._outstanding.discard(self.name)
                    if not self._outstanding:
                        self._done.notify_all()


class Runner:
    """Runs the collectors on their schedule and hands each snapshot to the sinks."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        *,
        interval: float,
        interval_of: Callable[[str], float],
        identity: HostIdentity,
        sinks: Iterable[SnapshotSink] = (),
        budget: float | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.interval = interval
        self.budget = budget if budget is not None else min(interval / 2, 2.0)
        self.identity = identity
        self.sinks = list(sinks)
        self._clock = clock
        self._wall = wall_clock
        self._done = threading.Condition()
        self._outstanding: set[str] = set()
        self._workers = [_Worker(c, self._done, self._outstanding, clock) for c in collectors]
        self._period = {w.name: max(interval_of(w.name), interval) for w in self._workers}
        self._due = {w.name: float("-inf") for w in self._workers}
        self._stale_logged: set[str] = set()
        self._sequence = 0
        self._started = False
        self._builder = BatchBuilder(identity)

    def start(self) -> None:
        if not self._started:
            self._started = True
            for w in self._workers:
                w.start()

    def close(self, timeout: float = 0.5) -> None:
        for w in self._workers:
            w.close()
        deadline = self._clock() + timeout
        for w in self._workers:
            w.join(max(0.0, deadline - self._clock()))

    def tick(self, now: float | None = None, *, everything: bool = False) -> HostBatch:
        """Start the due collectors, wait for them within the budget, emit one snapshot."""
        self.start()
        now = self._clock() if now is None else now
        started: list[_Worker] = []
        with self._done:
            self._outstanding.clear()
        for w in self._workers:
            if not everything and now < self._due[w.name]:
                continue
            if w.submit(now):
                started.append(w)
                period = self._period[w.name]
                due = self._due[w.name]
                if due == float("-inf"):
                    self._due[w.name] = now + period
                else:  # stay on this collector's own grid; skip periods that were missed
                    self._due[w.name] = due + period * ((now - due) // period + 1)
            else:
                logger.warning(
                    "collector %s is still running; skipped this tick",
                    w.name,
                    extra={"collector": w.name},
                )
        with self._done:
            finished = self._done.wait_for(
                lambda: not any(w.busy for w in started), timeout=self.budget
            )
            if not finished:
                late = ", ".join(w.name for w in started if w.busy)
                logger.warning("collectors still running after %.1f s: %s", self.budget, late)
            readings = self._fresh_readings(now)
        self._sequence += 1
        batch = self._builder.build(
            readings,
            timestamp_ms=int(self._wall() * 1000),
            sequence=self._sequence,
        )
        for sink in self.sinks:
            try:
                sink.put(batch)
            except Exception:
                logger.exception("snapshot sink %s failed", type(sink).__name__)
        return batch

    def _fresh_readings(self, now: float) -> dict[str, Reading]:
        readings: dict[str, Reading] = {}
        for w in self._workers:
            if w.reading is None:
                continue
            if now - w.reading_at > 3 * self._period[w.name]:
                if w.name not in self._stale_logged:
                    logger.warning("collector %s has no fresh reading; dropping it", w.name)
                    self._stale_logged.add(w.name)
                continue
            self._stale_logged.discard(w.name)
            readings[w.name] = w.reading
        return readings

    def run(self, stop: threading.Event) -> None:
        """Tick on the schedule until ``stop`` is set."""
        self.start()
        origin = self._clock()
        k = 0
        while not stop.is_set():
            self.tick(origin + k * self.interval)
            now = self._clock()
            k = max(k + 1, int((now - origin) // self.interval) + 1)
            stop.wait(max(0.0, origin + k * self.interval - now))
