"""The login throttle and rate limits shared through Redis (the session's own database), and
their fallback to per-process counting while Redis cannot be reached."""

from __future__ import annotations

import asyncio
import socket

import pytest
import redis.asyncio as aioredis
from replicas import REDIS_HOST, REDIS_PORT, flush

from hostpulse.server.auth.exceptions import Throttled
from hostpulse.server.cluster.connection import open_client
from hostpulse.server.cluster.limits import SharedLoginThrottle, SharedRateLimiter


def test_two_replicas_count_failed_logins_and_requests_together(redis_db: int) -> None:
    flush(redis_db)

    async def run() -> None:
        a = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
        b = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
        try:
            ta = SharedLoginThrottle(a, 10, 60.0, lambda: 0.0)
            tb = SharedLoginThrottle(b, 10, 60.0, lambda: 0.0)
            keys = [("user:eve", "account 'eve'"), ("addr:10.0.0.1", "10.0.0.1")]
            for i in range(10):
                await (ta if i % 2 else tb).attempt(keys)  # 10 failures, 5 on each
            with pytest.raises(Throttled) as exc:
                await ta.attempt(keys)
            assert "account 'eve'" in exc.value.reason and 50 <= exc.value.retry_after <= 60
            # another account from another address is not held back
            stamp = await tb.attempt([("user:bob", "account 'bob'"), ("addr:10.0.0.2", "x")])
            await tb.release("addr:10.0.0.2", stamp)
            await tb.succeeded("user:bob")
            assert not await a.exists("hostpulse:throttle:user:bob")
            assert await a.zcard("hostpulse:throttle:addr:10.0.0.2") == 0

            ra = SharedRateLimiter(a, "agent", 5, 60.0, lambda: 0.0)
            rb = SharedRateLimiter(b, "agent", 5, 60.0, lambda: 0.0)
            for i in range(5):
                await (ra if i % 2 else rb).hit("7")
            with pytest.raises(Throttled) as exc:
                await rb.hit("7")
            assert exc.value.retry_after >= 59
            await ra.hit("8")  # another key has its own count
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(run())


def test_without_redis_each_replica_counts_alone() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    async def run() -> None:
        client = open_client(f"redis://127.0.0.1:{port}/0")
        try:
            limiter = SharedRateLimiter(client, "user", 3, 60.0, lambda: 0.0)
            for _ in range(3):
                await limiter.hit("alice")
            with pytest.raises(Throttled):
                await limiter.hit("alice")
            throttle = SharedLoginThrottle(client, 2, 60.0, lambda: 0.0)
            keys = [("user:x", "account 'x'")]
            await throttle.attempt(keys)
            await throttle.attempt(keys)
            with pytest.raises(Throttled):
                await throttle.attempt(keys)
        finally:
            await client.aclose()

    asyncio.run(run())
