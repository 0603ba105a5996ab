"""The login throttle and the request rate limits shared by the replicas: the same limits as
one server's (``hostpulse.server.auth.throttle``), counted in Redis by Lua scripts, so that a
check and its count are one atomic step on Redis' clock whichever replica a request reaches.

Keys (each expires after its window): ``hostpulse:throttle:<user:NAME|addr:ADDRESS>`` a sorted
set of the failed attempts' stamps (at most ``limit``), ``hostpulse:rate:<user|agent>:<ID>``
a hash with the window's start and count.

While Redis cannot be reached each replica falls back to its own in-memory counters (the same
limits per replica, so at most N times the limit over N replicas) and says so in its log once
per minute; it goes back to Redis by itself."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis

from hostpulse.server.auth.exceptions import Throttled
from hostpulse.server.auth.throttle import FailureThrottle, RateLimiter
from hostpulse.server.cluster.connection import PREFIX, RedisFailure

logger = logging.getLogger(__name__)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: the throttle keys; ARGV: limit, window ms, member. Returns {0, 0} when counted, else
# {index of the refusing key (1-based), ms until it may try again}.
_ATTEMPT = (
    _NOW
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local wait = tonumber(oldest[2]) + window - now
    if wait > 0 then return {i, wait} end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('ZREMRANGEBYRANK', key, 0, -(limit + 1))
  redis.call('PEXPIRE', key, window)
end
return {0, 0}
"""
)

# KEYS[1]: the rate key; ARGV: limit, window ms. Returns 0 when counted, else ms left.
_HIT = (
    _NOW
    + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot = redis.call('HMGET', KEYS[1], 's', 'c')
local start = tonumber(slot[1])
if start == nil or now - start >= window then
  redis.call('HSET', KEYS[1], 's', now, 'c', 1)
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
if tonumber(slot[2]) >= limit then return start + window - now end
redis.call('HINCRBY', KEYS[1], 'c', 1)
return 0
"""
)

WARN_EVERY_S = 60.0


class _Fallback:
    """Logs a Redis failure at most once per ``WARN_EVERY_S``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._warned = -math.inf
        self.used = 0

    def note(self, exc: BaseException) -> None:
        self.used += 1
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_S:
            self._warned = now
            logger.warning(
                "Redis unavailable: %s counted by this replica alone until it is back",
                self.what,
                extra={"error": str(exc) or type(exc).__name__},
            )


class SharedLoginThrottle:
    """``FailureThrottle`` over Redis (see the module docstring)."""

    def __init__(
        self, client: Redis, limit: int, window: float, clock: Callable[[], float]
    ) -> None:
        self.limit = limit
        self.window_ms = int(window * 1000)
        self._client = client
        self._attempt = client.register_script(_ATTEMPT)
        self.local = FailureThrottle(limit, window, clock)
        self._fallback = _Fallback("failed logins")

    @staticmethod
    def _key(key: str) -> str:
        return f"{PREFIX}throttle:{key}"

    async def attempt(self, keys: list[tuple[str, str]]) -> object:
        member = secrets.token_hex(8)
        try:
            found = await self._attempt(
                keys=[self._key(k) for k, _ in keys], args=[self.limit, self.window_ms, member]
            )
        except RedisFailure as exc:
            self._fallback.note(exc)
            return ("local", await self.local.attempt(keys))
        index, wait_ms = int(found[0]), int(found[1])
        if index:
            what = keys[index - 1][1]
            raise Throttled(
                f"too many failed logins for {what}; try again later", math.ceil(wait_ms / 1000)
            )
        return member

    async def release(self, key: str, stamp: object) -> None:
        if isinstance(stamp, tuple):
            await self.local.release(key, stamp[1])
            return
        try:
            await self._client.zrem(self._key(key), str(stamp))
        except RedisFailure as exc:
            self._fallback.note(exc)

    async def succeeded(self, key: str) -> None:
        await self.local.succeeded(key)
        try:
            await self._client.delete(self._key(key))
        except RedisFailure as exc:
            self._fallback.note(exc)


class SharedRateLimiter:
    """``RateLimiter`` over Redis (see the module docstring); ``kind`` names its keys."""

    def __init__(
        self, client: Redis, kind: str, limit: int, window: float, clock: Callable[[], float]
    ) -> None:
        self.limit = limit
        self.window = window
        self.window_ms = int(window * 1000)
        self._prefix = f"{PREFIX}rate:{kind}:"
        self._hit = client.register_script(_HIT)
        self.local = RateLimiter(limit, window, clock)
        self._fallback = _Fallback(f"{kind} rate limits")

    async def hit(self, key: str) -> None:
        try:
            wait_ms = int(
                await self._hit(keys=[self._prefix + key], args=[self.limit, self.window_ms])
            )
        except RedisFailure as exc:
            self._fallback.note(exc)
            await self.local.hit(key)
            return
        if wait_ms > 0:
            raise Throttled(
                f"rate limit of {self.limit} requests per {self.window:g} s exceeded",
                math.ceil(wait_ms / 1000),
            )
