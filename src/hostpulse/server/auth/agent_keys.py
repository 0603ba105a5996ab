"""Per-host agent keys and the enrollment tokens that create them.

A request's key is found by its SHA-256 (one dict lookup once cached). The cache holds live
keys only and is updated by every revoke/rotate/enroll of this process, so a revocation through
the API is effective on the next request. A revocation by another process (``hostpulse key
revoke``, another replica) is noticed by counting the revoked keys every
``REVOCATION_CHECK_S`` (``watch_revocations``, one small query; keys are never deleted, so the
count only grows): when it changed, every cached key is read again at its next use. While the
count can be read, an entry is used for ``KEY_CACHE_TTL_S``; while it cannot, for
``CACHE_TTL_S`` only, so a revocation still takes effect within 10 s (with ``redis_url`` the
replicas also tell each other at once: ``changed`` and ``forget``). Re-reading every key every
10 s instead cost a fleet of 10,000 hosts a thousand key reads a second.

An entry older than a quarter of its life (``REFRESH_SHARE``) is read again in the background
while requests go on using it (those of ``REFRESH_GATHER_S`` together), so an agent never
waits for the database for a key it used before; and the keys requests need at the same time
are read in one query (``_read_wanted``): a fleet of 1,000 hosts made one query per host on a
pool of a few connections, and its requests queued for seconds. ``last_used_ms`` is kept in
memory and written in bulk (``flush``), not on every ingest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Callable

from hostpulse.server.auth import tokens
from hostpulse.server.auth.enrollment import PREFIX_SHOWN, Enroller, already_enrolled, max_hosts_of
from hostpulse.server.auth.exceptions import (
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from hostpulse.server.auth.principals import Agent, NewKey
from hostpulse.server.auth.repository import AuthRepository, EnrollmentRow, KeyRow
from hostpulse.server.auth.settings import AuthConfig

logger = logging.getLogger(__name__)

MAX_HOST_ID = 200
BAD_KEY = "invalid or revoked agent key"
_MAX_NEGATIVE = 10_000
CACHE_TTL_S = 10.0
"""How long a cached key is used while the revoked keys cannot be counted."""
KEY_CACHE_TTL_S = 600.0
"""How long a cached key is used while ``watch_revocations`` counts the revoked keys."""
REVOCATION_CHECK_S = 5.0
"""How often the revoked keys are counted (a revocation by another process is refused from
within this much of it on)."""
REVOCATION_WARN_EVERY_S = 60.0
LOOKUP_BATCH = 500
"""Keys read from the database in one query at most (bound parameters of one statement)."""
REFRESH_SHARE = 0.25
"""An entry this share of its life old is read again in the background, on its next use. Half
was too late for the default agent interval (5 s, half of ``CACHE_TTL_S``): a report found
its entry between 5 and 10 s old, so every second one asked for the refresh just before the
entry expired, and one that came later than that by even a few milliseconds (the network, a
queue in the server, the refresh's own gathering) waited for the database instead; the fleet
bench at 1,000 hosts saw hundreds of such reads a minute. At a quarter the asking report finds
the entry 2.5-7.5 s old: 2.5 s to spare."""
REFRESH_GATHER_S = 1.0
"""Entries past ``REFRESH_SHARE`` of their life are read again together after this long (they
stay valid until ``CACHE_TTL_S``): a fleet whose agents report every 5 s asks for a refresh
with almost every request; read as they came, that was one small query every few requests
(about 9 a second at 60 requests/s, most of the server's SQL), read together it is one a
second."""


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
        refresh_gather_s: float = REFRESH_GATHER_S,
    ) -> None:
        self.repo = repo
        self.config = config
        self._now = clock_ms
        self._monotonic = monotonic
        self._refresh_gather_s = refresh_gather_s
        self._stale: set[str] = set()  # hashes to read again at the next refresh
        self._refresh_due: asyncio.TimerHandle | None = None
        self._live: dict[str, tuple[Agent, float]] = {}  # key hash -> (principal, read at)
        self._dead: set[str] = set()  # hashes known to be unknown or revoked
        self._last_used: dict[int, int] = {}
        self._wanted: dict[str, asyncio.Future[None]] = {}  # hash -> its reading
        self._reader: asyncio.Task[None] | None = None
        self.cache_ttl_s = CACHE_TTL_S
        """How long an entry is used before it is read again (``KEY_CACHE_TTL_S`` while
        ``watch_revocations`` counts the revoked keys)."""
        self._revoked: int | None = None  # revoked keys at the last check_revocations
        self._generation = 0  # forget_all calls so far
        self._enroller = Enroller(repo, config, clock_ms, self._issued)
        self.changed: Callable[[int | None, str | None], None] = lambda key_id, host_id: None
        """Called after a key stopped working here: ``(key_id, None)`` revoked, ``(None,
        host_id)`` replaced by a new key of the host."""

    # -- requests -----------------------------------------------------------------------------

    async def authenticate(self, key: str) -> Agent:
        h = tokens.digest(key)
        cached = self._live.get(h)
        ttl = self.cache_ttl_s
        age = self._monotonic() - cached[1] if cached is not None else ttl
        if cached is None or age >= ttl:
            if h in self._dead:
                raise Unauthenticated(BAD_KEY)
            await self._read(h)
            cached = self._live.get(h)
            if cached is None:
                raise Unauthenticated(BAD_KEY)
        elif age >= ttl * REFRESH_SHARE:
            self._refresh_soon(h)  # read it again before it expires: no request waits for it
        agent = cached[0]
        self._last_used[agent.key_id] = self._now()
        return agent

    def _refresh_soon(self, key_hash: str) -> None:
        self._stale.add(key_hash)
        if self._refresh_due is None:
            loop = asyncio.get_running_loop()
            self._refresh_due = loop.call_later(self._refresh_gather_s, self._refresh)

    def _refresh(self) -> None:
        self._refresh_due = None
        stale, self._stale = self._stale, set()
        for h in stale:
            if h in self._live:
                self._wanted_future(h)

    async def _read(self, key_hash: str) -> None:
        """Read ``key_hash`` into the cache (``_live`` or ``_dead``) with every other hash
        requested while a query runs (one query in flight at a time, like a group commit)."""
        await asyncio.shield(self._wanted_future(key_hash))  # a caller that goes away
        # does not cancel the reading the others wait for

    def _wanted_future(self, key_hash: str) -> asyncio.Future[None]:
        wanted = self._wanted.get(key_hash)
        if wanted is None:
            wanted = asyncio.get_running_loop().create_future()
            self._wanted[key_hash] = wanted
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read_wanted())
        return wanted

    async def _read_wanted(self) -> None:
        while self._wanted:
            hashes = list(self._wanted)[:LOOKUP_BATCH]
            started = self._monotonic()
            generation = self._generation
            try:
                rows = await self.repo.keys_by_hash(hashes)
            except Exception as exc:  # every waiter gets the error (a 5xx), as one query would
                logger.warning("reading %d agent keys failed: %s", len(hashes), exc)
                for h in hashes:
                    future = self._wanted.pop(h)
                    future.set_exception(exc)
                    future.exception()  # retrieved: a refresh has no waiter
                continue
            for h in hashes:
                row = rows.get(h)
                if row is None or row.revoked_ms is not None:
                    self._live.pop(h, None)
                    if len(self._dead) >= _MAX_NEGATIVE:
                        self._dead.clear()
                    self._dead.add(h)
                elif h not in self._dead:  # else revoked here while the query ran
                    if generation != self._generation:  # may predate what forget_all was for
                        started = min(started, self._monotonic() - self.cache_ttl_s + CACHE_TTL_S)
                    self._live[h] = (Agent(row.id, row.host_id), started)
                self._wanted.pop(h).set_result(None)

    async def flush(self) -> None:
        pending, self._last_used = self._last_used, {}
        await self.repo.touch_keys(pending)

    def forget(self, *, key_id: int | None = None, host_id: str | None = None) -> None:
        """Another replica revoked key ``key_id`` or replaced ``host_id``'s key: drop them
        from the cache (refused from the next request on)."""
        self._forget(key_id=key_id, host_id=host_id)

    async def check_revocations(self) -> bool:
        """Count the revoked keys; when the count changed since the last check (a revocation
        by another process), every cached key is read again at its next use. True then."""
        count = await self.repo.revoked_key_count()
        changed = self._revoked is not None and count != self._revoked
        self._revoked = count
        if changed:
            self.forget_all()
        return changed

    async def watch_revocations(self, stop: asyncio.Event, every_s: float | None = None) -> None:
        """Until ``stop``: count the revoked keys every ``every_s`` (``REVOCATION_CHECK_S``);
        cache keys for ``KEY_CACHE_TTL_S`` while that works and for ``CACHE_TTL_S`` while it
        does not (the database cannot be read: a warning a minute at most)."""
        every_s = REVOCATION_CHECK_S if every_s is None else every_s
        warned = -REVOCATION_WARN_EVERY_S
        while not stop.is_set():
            try:
                await self.check_revocations()
            except Exception as exc:
                self.cache_ttl_s = CACHE_TTL_S
                if self._monotonic() - warned >= REVOCATION_WARN_EVERY_S:
                    warned = self._monotonic()
                    logger.warning(
                        "cannot count revoked agent keys (keys cached for 10 s): %s", exc
                    )
            else:
                self.cache_ttl_s = KEY_CACHE_TTL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    def forget_all(self) -> None:
        """Read every key from the database again at its next use (revocations may have been
        missed while the replicas could not talk)."""
        self._live.clear()
        self._dead.clear()
        self._generation += 1

    def _forget(self, *, key_id: int | None = None, host_id: str | None = None) -> None:
        for h, (a, _) in list(self._live.items()):
            if a.key_id == key_id or a.host_id == host_id:
                del self._live[h]
                self._dead.add(h)

    def _forget_hosts(self, host_ids: set[str]) -> None:
        """Drop the cached keys of ``host_ids`` (one pass over the cache for a whole batch)."""
        for h, (a, _) in list(self._live.items()):
            if a.host_id in host_ids:
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
            raise already_enrolled(host_id)
        self._forget(host_id=host_id)
        self.changed(None, host_id)
        return NewKey(key_id, host_id, key)

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

    def max_hosts_of(self, row: EnrollmentRow) -> int:
        """How many hosts (enrollments) the token allows in all."""
        return max_hosts_of(row, self.config)

    async def create_enrollment(
        self, host_id: str | None, ttl_s: int, single_use: bool, max_hosts: int | None = None
    ) -> tuple[EnrollmentRow, str]:
        """A new token (returned once, stored hashed) and its row. ``max_hosts``: how many
        hosts a multi-use token may enroll (default ``enrollment_max_hosts``, at most the
        server's ``max_hosts``)."""
        if host_id is not None:
            check_host_id(host_id)
        if not 1 <= ttl_s <= self.config.max_enrollment_ttl_s:
            raise InvalidInput(
                f"ttl_seconds: must be between 1 and {self.config.max_enrollment_ttl_s}"
            )
        most = 1 if single_use else self.config.max_hosts
        if max_hosts is not None and not 1 <= max_hosts <= most:
            raise InvalidInput(
                f"max_hosts: must be between 1 and {most}"
                + (" for a single-use token" if single_use else " (the server's max_hosts)")
            )
        if single_use:
            max_hosts = 1
        token = tokens.new_token(tokens.ENROLL_PREFIX)
        now = self._now()
        expires = now + ttl_s * 1000
        token_id = await self.repo.insert_enrollment(
            tokens.digest(token), host_id, expires, single_use, now, max_hosts
        )
        return EnrollmentRow(token_id, host_id, expires, single_use, 0, now, max_hosts), token

    async def list_enrollments(self) -> list[EnrollmentRow]:
        return await self.repo.list_enrollments()

    async def delete_enrollment(self, token_id: int) -> None:
        if not await self.repo.delete_enrollment(token_id):
            raise NotFound(f"no enrollment token {token_id}")

    async def enroll(self, token: str, host_id: str) -> NewKey:
        """Exchange an enrollment token for ``host_id``'s key. A host that has a live key is
        replaced only with a token bound to it (an admin named the host): an unbound or
        multi-use token cannot take over an enrolled host (Conflict, the token not used).
        Concurrent enrollments are written together (``enrollment.Enroller``)."""
        check_host_id(host_id)
        return await self._enroller.enroll(token, host_id)

    def _issued(self, host_ids: list[str]) -> None:
        self._forget_hosts(set(host_ids))
        for host_id in host_ids:
            self.changed(None, host_id)
