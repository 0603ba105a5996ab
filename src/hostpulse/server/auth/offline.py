"""The auth service without a running server, on the server's database and data directory:
for the ``hostpulse user|key|token`` commands and for ``hostpulse up``'s local agent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from hostpulse.server.auth.repository import AuthRepository
from hostpulse.server.auth.service import AuthService
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.server.auth.tokens import load_or_create_secret
from hostpulse.server.config import ServerSettings
from hostpulse.store import resolve
from hostpulse.store.db import Database


def config_of(settings: ServerSettings) -> AuthConfig:
    return AuthConfig(
        access_ttl_s=int(settings.access_token_ttl),
        refresh_ttl_s=int(settings.refresh_token_ttl),
        agent_rate_limit=settings.agent_rate_limit,
        user_rate_limit=settings.user_rate_limit,
        rate_window_s=settings.rate_limit_window,
        hash_concurrency=settings.password_hash_concurrency,
        hash_queue=settings.password_hash_queue,
    )


@contextlib.asynccontextmanager
async def offline_auth(settings: ServerSettings) -> AsyncIterator[AuthService]:
    """The service on the database the server uses (its schema brought up to date first):
    this process's one ``Database``, closed on exit."""
    # created as the server would: for its user only
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not settings.on_postgres:
        resolve(settings.store_url)[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with Database(settings.relational_url) as database:
        secret = load_or_create_secret(settings.data_dir)
        service = AuthService(AuthRepository(database.engine), secret, config_of(settings))
        events: list[dict[str, object]] = []
        service.users.changed = lambda: events.append({"kind": "users"})
        service.agents.changed = lambda key_id, host_id: events.append(
            {"kind": "keys", "key_id": key_id, "host_id": host_id}
        )
        yield service
        if events and settings.redis_url is not None:
            from hostpulse.server.cluster.node import tell_replicas

            await tell_replicas(settings.redis_url, events)
