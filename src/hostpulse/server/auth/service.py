"""AuthService: the one object the routes, the ingest fast path and the CLI use."""

from __future__ import annotations

import time
from collections.abc import Callable

from hostpulse.server.auth import tokens
from hostpulse.server.auth.agent_keys import AgentKeyService
from hostpulse.server.auth.exceptions import Forbidden, Unauthenticated
from hostpulse.server.auth.principals import Agent, User
from hostpulse.server.auth.repository import AuthRepository
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.server.auth.throttle import RateLimiter, RequestLimiter
from hostpulse.server.auth.users import UserService


def bearer(authorization: str | None) -> str | None:
    """The credential in ``Authorization: Bearer <credential>`` (None when absent)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class AuthService:
    def __init__(
        self,
        repo: AuthRepository,
        secret: bytes,
        config: AuthConfig | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        cfg = config or AuthConfig()
        self.config = cfg
        self.repo = repo
        self.users = UserService(repo, secret, cfg, clock_ms, monotonic)
        self.agents = AgentKeyService(repo, cfg, clock_ms, monotonic)
        self.user_rate: RequestLimiter = RateLimiter(
            cfg.user_rate_limit, cfg.rate_window_s, monotonic
        )
        self.agent_rate: RequestLimiter = RateLimiter(
            cfg.agent_rate_limit, cfg.rate_window_s, monotonic
        )

    async def user(self, credential: str | None) -> User:
        """The user behind an access token, counted against the user's rate limit.
        401 without a valid token; 403 for an agent key (agents may only push)."""
        if credential is None:
            raise Unauthenticated("sign in: send Authorization: Bearer <access token>")
        if credential.startswith(tokens.AGENT_KEY_PREFIX):
            await self.agents.authenticate(credential)  # 401 when it is not a live key
            raise Forbidden("agent keys may only push samples (POST /api/v1/ingest)")
        user = await self.users.from_access_token(credential)
        await self.user_rate.hit(user.username)
        return user

    async def agent(self, credential: str | None) -> Agent:
        """The agent behind a key, counted against the key's rate limit. 401 without a live
        key; 403 for a user's access token (users do not push)."""
        if credential is None:
            raise Unauthenticated("send the host's agent key: Authorization: Bearer hpk_...")
        if not credential.startswith(tokens.AGENT_KEY_PREFIX):
            if self.users.looks_valid(credential):
                raise Forbidden("only agent keys may push samples; user tokens may not")
            raise Unauthenticated("send the host's agent key: Authorization: Bearer hpk_...")
        agent = await self.agents.authenticate(credential)
        await self.agent_rate.hit(str(agent.key_id))
        return agent

    async def ingest_host(self, authorization: str | None) -> str:
        """For both ingest paths (the route and the ASGI fast path): the only host the request
        may push for, from its ``Authorization`` header; AuthError otherwise."""
        return (await self.agent(bearer(authorization))).host_id
