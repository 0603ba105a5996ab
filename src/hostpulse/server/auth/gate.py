"""Bounded password hashing: argon2id costs 64 MiB and tens of milliseconds of CPU per check, so
the number run at once, and the number waiting for a turn, are capped. Past both the caller gets
Busy (503 + Retry-After) at once instead of memory and CPU being spent on an unauthenticated
request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from hostpulse.server.auth.exceptions import Busy

T = TypeVar("T")
RETRY_AFTER_S = 1


class HashGate:
    """At most ``concurrency`` hashes in worker threads at once and ``queue`` callers waiting;
    ``peak`` is the most that ever ran at once (for tests and diagnostics)."""

    def __init__(self, concurrency: int, queue: int) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("concurrency must be at least 1 and queue at least 0")
        self.concurrency = concurrency
        self.queue = queue
        self._slots = asyncio.Semaphore(concurrency)
        self._admitted = 0  # running + waiting
        self._running = 0
        self.peak = 0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread when a slot is free; Busy when too many wait."""
        if self._admitted >= self.concurrency + self.queue:
            raise Busy("too many password checks in progress; try again shortly", RETRY_AFTER_S)
        self._admitted += 1
        try:
            async with self._slots:
                self._running += 1
                self.peak = max(self.peak, self._running)
                try:
                    return await asyncio.to_thread(fn, *args)
                finally:
                    self._running -= 1
        finally:
            self._admitted -= 1
