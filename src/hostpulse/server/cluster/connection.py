"""The Redis client of a replica: URL checks, the start-up probe, and key/channel names."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

SCHEMES = ("redis", "rediss", "unix")
PREFIX = "hostpulse:"
"""Every key hostpulse writes starts with this (in the URL's database number)."""
SOCKET_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 10.0

RedisFailure = (RedisError, OSError, TimeoutError)
"""What a call to Redis raises when Redis is down, slow or refuses."""


def check_url(url: str) -> str:
    """``url`` when it is a Redis URL (redis://, rediss:// or unix://), else ValueError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"{url!r} is not a Redis URL (e.g. redis://127.0.0.1:6379/0, rediss://..., "
            "unix:///run/redis.sock)"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{url!r} names no host (e.g. redis://127.0.0.1:6379/0)")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"{url!r}: the path must be a database number (e.g. /0)")
    return url.strip()


def shown(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def open_client(url: str) -> Redis:
    """A client (a pool of connections, opened on first use) with bounded timeouts: a Redis
    that hangs costs a request at most ``SOCKET_TIMEOUT_S``, never the server."""
    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def database_of(client: Redis) -> int:
    return int(client.connection_pool.connection_kwargs.get("db", 0) or 0)


def channel_name(client: Redis, name: str) -> str:
    """Pub/sub channels are not per database: the database number is part of the name, so
    that two deployments (or test sessions) on one Redis in different databases stay apart."""
    return f"{PREFIX}{database_of(client)}:{name}"


async def probe(url: str) -> str | None:
    """None when Redis at ``url`` answers PING; else the problem naming the key."""
    client = open_client(url)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await client.ping()
    except (*RedisFailure,) as exc:
        reason = str(exc) or type(exc).__name__
        return f"HOSTPULSE_REDIS_URL (redis_url): cannot use Redis at {shown(url)}: {reason}"
    finally:
        await client.aclose()
    return None
