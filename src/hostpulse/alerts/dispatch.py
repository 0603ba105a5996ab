"""Delivers notifications: one queue per channel, served by ``CHANNEL_SENDS`` workers, retries
with backoff, every attempt recorded. A slow or failing channel never delays another channel or
the caller, and a notification waiting for its retry never holds up the ones behind it in its
channel (it rejoins the queue when its backoff ends, so a retried notification can arrive after
a newer one).

Within a channel the notifications of one rule are sent one at a time, in the order they were
made (a rule's "resolved" never overtakes its "firing"); different rules are sent side by side.
So a storm of one rule (a default rule firing on a thousand hosts at once, each its own
notification unless the rule has ``group_wait``) holds up that rule's own notifications, not
another rule's: a host breaching a second rule during the storm is announced at once.

The worker never waits on the database: a job may reach its worker before its notification
row is written (``Job.row`` resolves to the row id once it is), and every attempt and outcome
is recorded by a task of its own, in order per job. So a database busy with something else
(the store's compaction holds SQLite's write lock for seconds at fleet scale) delays the
record of a delivery, never the delivery itself nor the next notification behind it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from hostpulse.alerts.channels import Channel
from hostpulse.alerts.clock import Clock
from hostpulse.alerts.exceptions import DeliveryError
from hostpulse.alerts.types import Notification

logger = logging.getLogger(__name__)

CHANNEL_SENDS = 4
"""Notifications of different rules one channel sends at once (each its own request or SMTP
session)."""


@dataclass(frozen=True, slots=True)
class Job:
    notification_id: int | None
    channel_id: str
    notification: Notification
    row: asyncio.Future[int | None] | None = None
    """Set when the notification row is still being written: resolves to its id (None if
    the write failed). ``notification_id`` is then ignored."""
    on_done: Callable[[], None] | None = None
    """Called once the job is finished: delivered, or given up on (recorded as failed)."""

    async def row_id(self) -> int | None:
        return self.notification_id if self.row is None else await asyncio.shield(self.row)


@dataclass(frozen=True, slots=True)
class Attempt:
    notification_id: int | None
    channel_id: str
    attempt: int
    at_ms: int
    ok: bool
    status: int | None
    error: str | None
    duration_ms: int
    retryable: bool = False


@dataclass(slots=True)
class _Pending:
    """A job on its way: the attempts made so far and its last record (records stay in order)."""

    job: Job
    attempts: int = 0
    tail: asyncio.Task[None] | None = None


class DeliveryLog(Protocol):
    async def record_attempt(self, attempt: Attempt) -> None: ...

    async def finish(self, notification_id: int | None, ok: bool, error: str | None) -> None: ...

    async def record_last(self, attempt: Attempt, ok: bool, error: str | None) -> None:
        """``record_attempt`` of a job's last attempt and ``finish`` of the job, in one write
        (a delivered notification costs one transaction, not two)."""
        ...


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How a job ended, with its last attempt when it ended by one (recorded together)."""

    ok: bool
    error: str | None
    last: Attempt | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    max_attempts: int = 12
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** (attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


class Dispatcher:
    def __init__(
        self,
        clock: Clock,
        log: DeliveryLog | None = None,
        retry: RetryPolicy | None = None,
        *,
        queue_limit: int = 10_000,
        sends: int = CHANNEL_SENDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.log = log
        self.retry = retry or RetryPolicy()
        self._queue_limit = queue_limit
        self._sleep = sleep
        self._channels: dict[str, Channel] = {}
        self._queues: dict[str, asyncio.Queue[_Pending]] = {}
        self._sends = sends
        self._workers: dict[str, list[asyncio.Task[None]]] = {}
        self._sending: dict[tuple[str, str], collections.deque[_Pending]] = {}
        """(channel, rule) being sent -> that rule's notifications taken meanwhile, in order."""
        self._records: set[asyncio.Task[None]] = set()
        self._retries: set[asyncio.Task[None]] = set()
        self._closed = False
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        """Notifications by (channel, sent | failed | dropped), for the server's metrics."""

    def set_channels(self, channels: dict[str, Channel]) -> None:
        self._channels = dict(channels)

    def channels(self) -> dict[str, Channel]:
        return dict(self._channels)

    def submit(self, job: Job) -> bool:
        """Queue a job for its channel's worker; False if the queue is full (job dropped)."""
        return self._enqueue(_Pending(job))

    def _enqueue(self, item: _Pending) -> bool:
        channel_id = item.job.channel_id
        if self._closed:
            return False
        queue = self._queues.get(channel_id)
        if queue is None:
            queue = self._queues[channel_id] = asyncio.Queue(self._queue_limit)
        workers = [w for w in self._workers.get(channel_id, ()) if not w.done()]
        while len(workers) < self._sends:
            workers.append(
                asyncio.create_task(
                    self._work(channel_id, queue), name=f"alerts-channel-{channel_id}"
                )
            )
        self._workers[channel_id] = workers
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self.outcomes[(channel_id, "dropped")] += 1
            logger.error("notification queue full, dropped", extra={"channel": channel_id})
            return False
        return True

    async def _work(self, channel_id: str, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            item = await queue.get()
            key = (channel_id, item.job.notification.rule_id)
            later = self._sending.get(key)
            if later is not None:  # another worker is sending this rule's: after it, by it
                later.append(item)
                continue
            later = self._sending[key] = collections.deque()
            try:
                while True:
                    try:
                        await self._deliver(item)
                    finally:
                        queue.task_done()
                    if not later:
                        break
                    item = later.popleft()
            finally:
                del self._sending[key]
                for left in later:  # only when this worker failed or was stopped
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(left)
                    queue.task_done()

    async def _deliver(self, item: _Pending) -> None:
        """One attempt; a retryable failure waits for its backoff off the worker."""
        job = item.job
        channel = self._channels.get(job.channel_id)
        if channel is None:
            self._finish(item, False, "channel no longer exists")
            return
        item.attempts += 1
        result = await self._try(channel, job, item.attempts)
        if result.ok or not result.retryable or item.attempts >= self.retry.max_attempts:
            self._finish(item, result.ok, result.error, result)
            return
        item.tail = self._record(item.tail, job, result)
        task = asyncio.create_task(self._retry_later(item, self.retry.delay(item.attempts)))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry_later(self, item: _Pending, delay: float) -> None:
        await self._sleep(delay)
        if not self._enqueue(item) and not self._closed:
            self._finish(item, False, "notification queue full")

    def _finish(
        self, item: _Pending, ok: bool, error: str | None, last: Attempt | None = None
    ) -> None:
        """The job ended (``last``: the attempt that ended it, recorded with the outcome)."""
        self.outcomes[(item.job.channel_id, "sent" if ok else "failed")] += 1
        if item.job.on_done is not None:
            item.job.on_done()
        self._record(item.tail, item.job, _Outcome(ok, error, last))
        if not ok:
            logger.warning(
                "notification not delivered",
                extra={"channel": item.job.channel_id, "attempts": item.attempts, "error": error},
            )

    def _record(
        self,
        after: asyncio.Task[None] | None,
        job: Job,
        what: Attempt | _Outcome,
    ) -> asyncio.Task[None] | None:
        """Record an attempt or the outcome of ``job`` on a task of its own, after ``after``
        (the job's previous record) and once the notification row exists."""
        if self.log is None:
            return None
        task = asyncio.create_task(self._write(after, job, what))
        self._records.add(task)
        task.add_done_callback(self._records.discard)
        return task

    async def _write(
        self,
        after: asyncio.Task[None] | None,
        job: Job,
        what: Attempt | _Outcome,
    ) -> None:
        if after is not None:
            await asyncio.wait([after])
        assert self.log is not None
        try:
            nid = await job.row_id()
            if isinstance(what, Attempt):
                await self.log.record_attempt(replace(what, notification_id=nid))
            elif what.last is not None:
                await self.log.record_last(
                    replace(what.last, notification_id=nid), what.ok, what.error
                )
            else:
                await self.log.finish(nid, what.ok, what.error)
        except Exception:  # the delivery happened; only its record is missing
            logger.exception("could not record a delivery", extra={"channel": job.channel_id})

    async def attempt(self, channel: Channel, job: Job, number: int) -> Attempt:
        """One delivery attempt, recorded before this returns (test sends)."""
        result = await self._try(channel, job, number)
        if self.log is not None:
            await self.log.record_attempt(replace(result, notification_id=await job.row_id()))
        return result

    async def _try(self, channel: Channel, job: Job, number: int) -> Attempt:
        """One delivery attempt; the caller records it."""
        start = time.perf_counter()
        at = self.clock.now_ms()
        status: int | None = None
        error: str | None = None
        ok = retryable = False
        try:
            await channel.send(job.notification)
            ok = True
        except DeliveryError as exc:
            error, status, retryable = str(exc), exc.status, exc.retryable
        except Exception as exc:  # a bug in a channel must not kill its worker
            logger.exception("channel crashed", extra={"channel": job.channel_id})
            error = f"internal error: {type(exc).__name__}: {exc}"
        return Attempt(
            job.notification_id,
            job.channel_id,
            number,
            at,
            ok,
            status,
            error,
            int((time.perf_counter() - start) * 1000),
            retryable,
        )

    async def join(self, limit_s: float = 30.0) -> None:
        """Wait until every job is finished, retries included, and recorded (tests)."""
        async with asyncio.timeout(limit_s):
            while True:
                for queue in list(self._queues.values()):
                    await queue.join()
                if self._retries:
                    await asyncio.wait(list(self._retries))
                elif self._records:
                    await asyncio.wait(list(self._records))
                elif all(q.empty() for q in self._queues.values()):
                    return

    async def close(self, limit_s: float = 10.0) -> None:
        """Stop the workers (a job being delivered stays queued in the database and is sent
        again at the next start) and let the records already made be written."""
        self._closed = True
        stopping = [*(w for ws in self._workers.values() for w in ws), *self._retries]
        for task in stopping:
            task.cancel()
        for task in stopping:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        if self._records:
            _, late = await asyncio.wait(list(self._records), timeout=limit_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
