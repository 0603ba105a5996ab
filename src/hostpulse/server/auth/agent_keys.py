"""Per-host agent keys and the enrollment tokens that create them.

A request's key is found by its SHA-256 (one dict lookup once cached). The cache holds live
keys only and is updated by every revoke/rotate/enroll of this process, so a revocation through
the API is effective on the next request; an entry is also re-read from the database after
``CACHE_TTL_S``, so a revocation by another process (``hostpulse key revoke``, another replica)
takes effect within that time (with ``redis_url`` the replicas tell each other at once:
``changed`` and ``forget``). ``last_used_ms`` is kept in memory and written in bulk
(``flush``), not on every ingest."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from hostpulse.server.auth import tokens
from hostpulse.server.auth.exceptions import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from hostpulse.server.auth.principals import Agent, NewKey
from hostpulse.server.auth.repository import AuthRepository, EnrollmentRow, KeyRow
from hostpulse.server.auth.settings import AuthConfig

MAX_HOST_ID = 200
PREFIX_SHOWN = 8
BAD_KEY = "invalid or revoked agent key"
BAD_ENROLL = "unknown, expired or already used enrollment token"
_MAX_NEGATIVE = 10_000
CACHE_TTL_S = 10.0


def enroll_command(server_url: str, token: str, host_id: str | None) -> str:
    """What to run on the new host (with ``--host-id`` when the token is bound to a host)."""
    parts = ["hostpulse", "agent", "--server", server_url.rstrip("/")]
    if host_id:
        parts += ["--host-id", host_id]
    return shlex.join([*parts, "--enroll", token])


def check_host_id(host_id: str) -> None:
    if not host_id or len(host_id) > MAX_HOST_ID or not host_id.isprintable():
        raise InvalidInput(f"host_id: must be 1-{MAX_HOST_ID} printable characters")


class AgentKeyService:
    def __init__(
        self,
        repo: AuthRepository,
        config: AuthConfig,
        clock_ms: Callable[[], int],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.config = config
        self._now = clock_ms
        self._monotonic = monotonic
        self._live: dict[str, tuple[Agent, float]] = {}  # key hash -> (principal, read at)
        self._dead: set[str] = set()  # hashes known to be unknown or revoked
        self._last_used: dict[int, int] = {}
        self.changed: Callable[[int | None, str | None], None] = lambda key_id, host_id: None
        """Called after a key stopped working here: ``(key_id, None)`` revoked, ``(None,
        host_id)`` replaced by a new key of the host."""

    # -- requests -----------------------------------------------------------------------------

    async def authenticate(self, key: str) -> Agent:
        h = tokens.digest(key)
        cached = self._live.get(h)
        now = self._monotonic()
        if cached is not None and now - cached[1] < CACHE_TTL_S:
            agent = cached[0]
        else:
            if h in self._dead:
                raise Unauthenticated(BAD_KEY)
            row = await self.repo.key_by_hash(h)
            if row is None or row.revoked_ms is not None:
                self._live.pop(h, None)
                if len(self._dead) >= _MAX_NEGATIVE:
                    self._dead.clear()
                self._dead.add(h)
                raise Unauthenticated(BAD_KEY)
            agent = Agent(row.id, row.host_id)
            self._live[h] = (agent, now)
        self._last_used[agent.key_id] = self._now()
        return agent

    async def flush(self) -> None:
        pending, self._last_used = self._last_used, {}
        await self.repo.touch_keys(pending)

    def forget(self, *, key_id: int | None = None, host_id: str | None = None) -> None:
        """Another replica revoked key ``key_id`` or replaced ``host_id``'s key: drop them
        from the cache (refused from the next request on)."""
        self._forget(key_id=key_id, host_id=host_id)

    def forget_all(self) -> None:
        """Read every key from the database again at its next use (revocations may have been
        missed while the replicas could not talk)."""
        self._live.clear()
        self._dead.clear()

    def _forget(self, *, key_id: int | None = None, host_id: str | None = None) -> None:
        for h, (a, _) in list(self._live.items()):
            if a.key_id == key_id or a.host_id == host_id:
                del self._live[h]
                self._dead.add(h)

    # -- keys ---------------------------------------------------------------------------------

    async def issue(self, host_id: str, *, replace: bool = True) -> NewKey:
        """A new key for ``host_id``; the host's previous key stops working (one per host).
        ``replace=False``: Conflict when the host has a live key."""
        check_host_id(host_id)
        key = tokens.new_token(tokens.AGENT_KEY_PREFIX)
        prefix = key[: len(tokens.AGENT_KEY_PREFIX) + PREFIX_SHOWN]
        key_id = await self.repo.insert_key(
            host_id, tokens.digest(key), prefix, self._now(), replace=replace
        )
        if key_id is None:
            raise self._enrolled(host_id)
        self._forget(host_id=host_id)
        self.changed(None, host_id)
        return NewKey(key_id, host_id, key)

    @staticmethod
    def _enrolled(host_id: str) -> Conflict:
        return Conflict(
            f"host {host_id!r} is already enrolled; to enroll it again use a token bound to it "
            f"(hostpulse token create --host {shlex.quote(host_id)}) or revoke its agent key "
            "first"
        )

    async def list_keys(self) -> list[KeyRow]:
        await self.flush()
        return await self.repo.list_keys()

    async def _get(self, key_id: int) -> KeyRow:
        row = await self.repo.get_key(key_id)
        if row is None:
            raise NotFound(f"no agent key {key_id}")
        return row

    async def revoke(self, key_id: int) -> None:
        await self._get(key_id)
        self._forget(key_id=key_id)
        await self.repo.revoke_key(key_id, self._now())
        self.changed(key_id, None)

    async def rotate(self, key_id: int) -> NewKey:
        """A new key for the host of key ``key_id``, which is revoked."""
        row = await self._get(key_id)
        if row.revoked_ms is not None:
            raise NotFound(f"agent key {key_id} is revoked; enroll the host again")
        return await self.issue(row.host_id)

    # -- enrollment ---------------------------------------------------------------------------

    async def create_enrollment(
        self, host_id: str | None, ttl_s: int, single_use: bool
    ) -> tuple[EnrollmentRow, str]:
        """A new token (returned once, stored hashed) and its row."""
        if host_id is not None:
            check_host_id(host_id)
        if not 1 <= ttl_s <= self.config.max_enrollment_ttl_s:
            raise InvalidInput(
                f"ttl_seconds: must be between 1 and {self.config.max_enrollment_ttl_s}"
            )
        token = tokens.new_token(tokens.ENROLL_PREFIX)
        now = self._now()
        token_id = await self.repo.insert_enrollment(
            tokens.digest(token), host_id, now + ttl_s * 1000, single_use, now
        )
        return EnrollmentRow(token_id, host_id, now + ttl_s * 1000, single_use, 0, now), token

    async def list_enrollments(self) -> list[EnrollmentRow]:
        return await self.repo.list_enrollments()

    async def delete_enrollment(self, token_id: int) -> None:
        if not await self.repo.delete_enrollment(token_id):
            raise NotFound(f"no enrollment token {token_id}")

    async def enroll(self, token: str, host_id: str) -> NewKey:
        """Exchange an enrollment token for ``host_id``'s key. A host that has a live key is
        replaced only with a token bound to it (an admin named the host): an unbound or
        multi-use token cannot take over an enrolled host (Conflict, the token not used)."""
        check_host_id(host_id)
        row = await self.repo.enrollment_by_hash(tokens.digest(token))
        if row is None or row.expires_ms <= self._now():
            raise Unauthenticated(BAD_ENROLL)
        if row.host_id is not None and row.host_id != host_id:
            raise Forbidden(f"this enrollment token is for host {row.host_id}, not {host_id}")
        bound = row.host_id == host_id
        if not bound and await self.repo.live_key_of(host_id):
            raise self._enrolled(host_id)
        if not await self.repo.use_enrollment(row.id):
            raise Unauthenticated(BAD_ENROLL)
        return await self.issue(host_id, replace=bound)
