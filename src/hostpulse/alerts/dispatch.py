"""Delivers notifications: one queue and worker per channel, retries with backoff, every
attempt recorded. A slow or failing channel never delays another channel or the caller."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from hostpulse.alerts.channels import Channel
from hostpulse.alerts.clock import Clock
from hostpulse.alerts.exceptions import DeliveryError
from hostpulse.alerts.types import Notification

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    notification_id: int | None
    channel_id: str
    notification: Notification


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


class DeliveryLog(Protocol):
    async def record_attempt(self, attempt: Attempt) -> None: ...

    async def finish(self, notification_id: int | None, ok: bool, error: str | None) -> None: ...


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.log = log
        self.retry = retry or RetryPolicy()
        self._queue_limit = queue_limit
        self._sleep = sleep
        self._channels: dict[str, Channel] = {}
        self._queues: dict[str, asyncio.Queue[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        """Notifications by (channel, sent | failed | dropped), for the server's metrics."""

    def set_channels(self, channels: dict[str, Channel]) -> None:
        self._channels = dict(channels)

    def channels(self) -> dict[str, Channel]:
        return dict(self._channels)

    def submit(self, job: Job) -> bool:
        """Queue a job for its channel's worker; False if the queue is full (job dropped)."""
        if self._closed:
            return False
        queue = self._queues.get(job.channel_id)
        if queue is None:
            queue = self._queues[job.channel_id] = asyncio.Queue(self._queue_limit)
        worker = self._workers.get(job.channel_id)
        if worker is None or worker.done():
            self._workers[job.channel_id] = asyncio.create_task(
                self._work(job.channel_id, queue), name=f"alerts-channel-{job.channel_id}"
            )
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            self.outcomes[(job.channel_id, "dropped")] += 1
            logger.error("notification queue full, dropped", extra={"channel": job.channel_id})
            return False
        return True

    async def _work(self, channel_id: str, queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._deliver(job)
            finally:
                queue.task_done()

    async def _deliver(self, job: Job) -> None:
        attempt = 0
        error: str | None = "channel no longer exists"
        ok = False
        while True:
            channel = self._channels.get(job.channel_id)
            if channel is None:
                break
            attempt += 1
            result = await self.attempt(channel, job, attempt)
            ok, error = result.ok, result.error
            if ok or not result.retryable or attempt >= self.retry.max_attempts:
                break
            await self._sleep(self.retry.delay(attempt))
        self.outcomes[(job.channel_id, "sent" if ok else "failed")] += 1
        if self.log is not None:
            await self.log.finish(job.notification_id, ok, error)
        if not ok:
            logger.warning(
                "notification not delivered",
                extra={"channel": job.channel_id, "attempts": attempt, "error": error},
            )

    async def attempt(self, channel: Channel, job: Job, number: int) -> Attempt:
        """One delivery attempt, recorded."""
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
        result = Attempt(
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
        if self.log is not None:
            await self.log.record_attempt(result)
        return result

    async def join(self, limit_s: float = 30.0) -> None:
        """Wait until every queued job is finished (tests, shutdown)."""
        async with asyncio.timeout(limit_s):
            for queue in list(self._queues.values()):
                await queue.join()

    async def close(self) -> None:
        self._closed = True
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
