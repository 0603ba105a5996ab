"""In-memory counters for login throttling and request rate limits (per server process).

Both keep bounded state: a fixed number of timestamps per key, and keys idle for a window are
pruned once the table grows. ``LoginThrottle`` and ``RequestLimiter`` are what the auth service
uses; with ``redis_url`` the replicas share them (``hostpulse.server.cluster.limits``), with
these classes as the fallback while Redis cannot be reached."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

from hostpulse.server.auth.exceptions import Throttled

MAX_KEYS = 100_000


class LoginThrottle(Protocol):
    async def attempt(self, keys: list[tuple[str, str]]) -> object:
        """Throttled when one of the keys may not try now; else count one attempt against
        each and return a stamp for ``release``."""
        ...

    async def release(self, key: str, stamp: object) -> None: ...

    async def succeeded(self, key: str) -> None: ...


class RequestLimiter(Protocol):
    async def hit(self, key: str) -> None:
        """Count one request of ``key``; Throttled when it is over the limit."""
        ...


class FailureThrottle:
    """After ``limit`` failures of a key within ``window`` seconds, further attempts are
    refused until the oldest of them is ``window`` seconds old."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, key: str, what: str) -> None:
        """Throttled when ``key`` may not try now."""
        times = self._failures.get(key)
        if times is None or len(times) < self.limit:
            return
        wait = times[0] + self.window - self._clock()
        if wait > 0:
            raise Throttled(f"too many failed logins for {what}; try again later", math.ceil(wait))

    async def attempt(self, keys: list[tuple[str, str]]) -> object:
        """Check every ``(key, what)`` and count one attempt against each, in one step with no
        await in between: concurrent attempts cannot all pass the check before any of them is
        counted. An attempt that turns out right is taken back with ``release``. Returns its
        stamp."""
        for key, what in keys:
            self.check(key, what)
        now = self._clock()
        for key, _ in keys:
            self._record(key, now)
        return now

    async def release(self, key: str, stamp: object) -> None:
        """Take back one attempt counted by ``attempt`` (it was not a failure)."""
        times = self._failures.get(key)
        if times is not None and isinstance(stamp, int | float) and stamp in times:
            times.remove(stamp)

    def failed(self, key: str) -> None:
        self._record(key, self._clock())

    def _record(self, key: str, now: float) -> None:
        times = self._failures.get(key)
        if times is None:
            if len(self._failures) >= MAX_KEYS:
                self._prune(now)
            times = self._failures[key] = deque(maxlen=self.limit)
        times.append(now)

    async def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        stale = [k for k, t in self._failures.items() if not t or t[-1] + self.window <= now]
        for k in stale:
            del self._failures[k]


class RateLimiter:
    """At most ``limit`` requests per key in each ``window`` (a window starts with the first
    request after the previous one ended); the next one gets Throttled with the seconds left."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # key -> [window start, count]

    async def hit(self, key: str) -> None:
        now = self._clock()
        slot = self._windows.get(key)
        if slot is None or now - slot[0] >= self.window:
            if slot is None and len(self._windows) >= MAX_KEYS:
                self._prune(now)
            self._windows[key] = [now, 1.0]
            return
        if slot[1] >= self.limit:
            raise Throttled(
                f"rate limit of {self.limit} requests per {self.window:g} s exceeded",
                math.ceil(slot[0] + self.window - now),
            )
        slot[1] += 1

    def _prune(self, now: float) -> None:
        stale = [k for k, s in self._windows.items() if now - s[0] >= self.window]
        for k in stale:
            del self._windows[k]
