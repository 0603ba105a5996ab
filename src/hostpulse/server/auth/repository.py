"""All reads and writes of the auth tables. Nothing else in the package issues SQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.server.auth import models as m


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    password_hash: str
    role: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class RefreshRow:
    id: int
    username: str
    expires_ms: int
    revoked_ms: int | None


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    host_id: str
    prefix: str
    created_ms: int
    last_used_ms: int | None
    revoked_ms: int | None


@dataclass(frozen=True, slots=True)
class EnrollmentRow:
    id: int
    host_id: str | None
    expires_ms: int
    single_use: bool
    uses: int
    created_ms: int
    max_hosts: int | None = None
    """Enrollments it allows; None: the server's ``enrollment_max_hosts``."""


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """A key that an enrollment writes, and the token use it counts."""

    token_id: int
    host_id: str
    key_hash: str
    prefix: str
    replace: bool
    """The host's live keys are revoked first (a token bound to the host)."""
    superseded: bool = False
    """A later enrollment of the same host in the same transaction replaces it: stored revoked."""


EnrollDecision = Callable[[dict[str, "EnrollmentRow"], set[str], int], Sequence[KeyGrant | None]]
"""(tokens by hash, the hosts asked for that have a live key, hosts enrolled in all) -> for
each enrollment asked for, the key to write or None (refused)."""

_KEY_COLS = (
    m.agent_keys.c.id,
    m.agent_keys.c.host_id,
    m.agent_keys.c.prefix,
    m.agent_keys.c.created_ms,
    m.agent_keys.c.last_used_ms,
    m.agent_keys.c.revoked_ms,
)
_ENROLL_COLS = (
    m.enrollment_tokens.c.id,
    m.enrollment_tokens.c.host_id,
    m.enrollment_tokens.c.expires_ms,
    m.enrollment_tokens.c.single_use,
    m.enrollment_tokens.c.uses,
    m.enrollment_tokens.c.created_ms,
    m.enrollment_tokens.c.max_hosts,
)


class _HostHasKey(Exception):
    """Inside ``insert_key``: the host has a live key and may not be replaced."""


class AuthRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_tables(self) -> None:
        """For tests and tools; the server uses the Alembic migrations."""
        async with self.engine.begin() as conn:
            await conn.run_sync(m.metadata.create_all)

    # -- users --------------------------------------------------------------------------------

    async def count_users(self, role: str | None = None) -> int:
        stmt = select(func.count()).select_from(m.users)
        if role is not None:
            stmt = stmt.where(m.users.c.role == role)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def get_user(self, username: str) -> UserRow | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(m.users).where(m.users.c.username == username))).first()
        return None if r is None else UserRow(r.username, r.password_hash, r.role, r.created_ms)

    async def list_users(self) -> list[UserRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(m.users).order_by(m.users.c.username))
            return [UserRow(r.username, r.password_hash, r.role, r.created_ms) for r in rows]

    async def insert_user(self, username: str, password_hash: str, role: str, now: int) -> bool:
        """False when the name is taken."""
        try:
            async with self.engine.begin() as conn:
                exists = (
                    await conn.execute(
                        select(m.users.c.username).where(m.users.c.username == username)
                    )
                ).first()
                if exists is not None:
                    return False
                await conn.execute(
                    insert(m.users).values(
                        username=username,
                        password_hash=password_hash,
                        role=role,
                        created_ms=now,
                        updated_ms=now,
                    )
                )
        except IntegrityError:  # created meanwhile by another server (replicas on PostgreSQL)
            return False
        return True

    async def update_user(
        self, username: str, now: int, *, role: str | None = None, password_hash: str | None = None
    ) -> None:
        values: dict[str, object] = {"updated_ms": now}
        if role is not None:
            values["role"] = role
        if password_hash is not None:
            values["password_hash"] = password_hash
        async with self.engine.begin() as conn:
            await conn.execute(update(m.users).where(m.users.c.username == username).values(values))

    async def delete_user(self, username: str, now: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(m.users).where(m.users.c.username == username))
            await conn.execute(
                update(m.refresh_tokens)
                .where(m.refresh_tokens.c.username == username)
                .where(m.refresh_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now)
            )

    # -- refresh tokens -----------------------------------------------------------------------

    async def insert_refresh(self, token_hash: str, username: str, now: int, expires: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(m.refresh_tokens).values(
                    token_hash=token_hash, username=username, created_ms=now, expires_ms=expires
                )
            )

    async def get_refresh(self, token_hash: str) -> RefreshRow | None:
        t = m.refresh_tokens
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(t).where(t.c.token_hash == token_hash))).first()
        return None if r is None else RefreshRow(r.id, r.username, r.expires_ms, r.revoked_ms)

    async def revoke_refresh(self, token_id: int, now: int) -> bool:
        """True when this call revoked it (False: it was revoked already, e.g. a race)."""
        t = m.refresh_tokens
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(t).where(t.c.id == token_id, t.c.revoked_ms.is_(None)).values(revoked_ms=now)
            )
        return bool(res.rowcount)

    async def revoke_user_refresh(self, username: str, now: int) -> None:
        t = m.refresh_tokens
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t)
                .where(t.c.username == username, t.c.revoked_ms.is_(None))
                .values(revoked_ms=now)
            )

    # -- agent keys ---------------------------------------------------------------------------

    async def insert_key(
        self, host_id: str, key_hash: str, prefix: str, now: int, *, replace: bool = True
    ) -> int | None:
        """A new key for ``host_id``; the host's other live keys are revoked (one per host).
        ``replace=False``: when the host has a live key, nothing changes and the answer is None
        (decided inside the write transaction, so two enrollments cannot both see none)."""
        t = m.agent_keys
        try:
            async with self.engine.begin() as conn:
                revoked = await conn.execute(
                    update(t)
                    .where(t.c.host_id == host_id, t.c.revoked_ms.is_(None))
                    .values(revoked_ms=now)
                )
                if revoked.rowcount and not replace:
                    raise _HostHasKey  # rolls the revocation back
                res = await conn.execute(
                    insert(t).values(
                        host_id=host_id, key_hash=key_hash, prefix=prefix, created_ms=now
                    )
                )
                return int(res.inserted_primary_key[0])  # type: ignore[index]
        except _HostHasKey:
            return None

    async def key_by_hash(self, key_hash: str) -> KeyRow | None:
        async with self.engine.connect() as conn:
            r = (
                await conn.execute(select(*_KEY_COLS).where(m.agent_keys.c.key_hash == key_hash))
            ).first()
        return None if r is None else KeyRow(*r)

    async def keys_by_hash(self, key_hashes: list[str]) -> dict[str, KeyRow]:
        """The keys of ``key_hashes`` that exist (revoked ones too), by hash: one query.

        The list is padded with its last hash to a power of two: each length of an ``IN``
        list is a statement text of its own, compiled by the database on first use, and a
        fleet's first requests came in nearly every length up to ``LOOKUP_BATCH`` (185
        lookups for 600 hosts; compiling was 4.6 % of a first contact's instructions)."""
        t = m.agent_keys
        padded = key_hashes + key_hashes[-1:] * (
            (1 << (len(key_hashes) - 1).bit_length()) - len(key_hashes)
        )
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.c.key_hash, *_KEY_COLS).where(t.c.key_hash.in_(padded))
            )
            return {r[0]: KeyRow(*r[1:]) for r in rows}

    async def revoked_key_count(self) -> int:
        """Keys revoked so far (keys are never deleted, so this only grows): a change means
        some key was revoked since the last count."""
        t = m.agent_keys
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(func.count()).select_from(t).where(t.c.revoked_ms.is_not(None))
            )
        return int(found or 0)

    async def live_key_of(self, host_id: str) -> bool:
        """Whether ``host_id`` has a key that is not revoked."""
        t = m.agent_keys
        async with self.engine.connect() as conn:
            r = await conn.execute(
                select(t.c.id).where(t.c.host_id == host_id, t.c.revoked_ms.is_(None)).limit(1)
            )
            return r.first() is not None

    async def count_live_keys(self) -> int:
        """Hosts with a key that is not revoked (the enrolled hosts)."""
        t = m.agent_keys
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(func.count(func.distinct(t.c.host_id))).where(t.c.revoked_ms.is_(None))
            )
        return int(found or 0)

    async def get_key(self, key_id: int) -> KeyRow | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(*_KEY_COLS).where(m.agent_keys.c.id == key_id))).first()
        return None if r is None else KeyRow(*r)

    async def list_keys(self) -> list[KeyRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_KEY_COLS).order_by(m.agent_keys.c.id))
            return [KeyRow(*r) for r in rows]

    async def revoke_key(self, key_id: int, now: int) -> None:
        t = m.agent_keys
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t).where(t.c.id == key_id, t.c.revoked_ms.is_(None)).values(revoked_ms=now)
            )

    async def touch_keys(self, last_used: dict[int, int]) -> None:
        if not last_used:
            return
        t = m.agent_keys
        rows = [{"k": key_id, "ms": ms} for key_id, ms in last_used.items()]
        async with self.engine.begin() as conn:  # one statement: the write lock is held briefly
            await conn.execute(
                update(t).where(t.c.id == bindparam("k")).values(last_used_ms=bindparam("ms")), rows
            )

    # -- enrollment tokens --------------------------------------------------------------------

    async def insert_enrollment(
        self,
        token_hash: str,
        host_id: str | None,
        expires: int,
        single_use: bool,
        now: int,
        max_hosts: int | None = None,
    ) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(
                insert(m.enrollment_tokens).values(
                    token_hash=token_hash,
                    host_id=host_id,
                    expires_ms=expires,
                    single_use=single_use,
                    uses=0,
                    created_ms=now,
                    max_hosts=max_hosts,
                )
            )
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    async def enrollment_by_hash(self, token_hash: str) -> EnrollmentRow | None:
        t = m.enrollment_tokens
        async with self.engine.connect() as conn:
            r = (
                await conn.execute(select(*_ENROLL_COLS).where(t.c.token_hash == token_hash))
            ).first()
        return None if r is None else EnrollmentRow(*r)

    async def list_enrollments(self) -> list[EnrollmentRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_ENROLL_COLS).order_by(m.enrollment_tokens.c.id))
            return [EnrollmentRow(*r) for r in rows]

    async def delete_enrollment(self, token_id: int) -> bool:
        t = m.enrollment_tokens
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(t).where(t.c.id == token_id))
        return bool(res.rowcount)

    async def enroll_many(
        self, token_hashes: list[str], host_ids: list[str], now: int, decide: EnrollDecision
    ) -> list[int | None]:
        """Enrollments in one write transaction: the tokens of ``token_hashes`` are locked
        first (SQLite's write lock; PostgreSQL's row locks), so what ``decide`` is shown (at
        most 500 distinct tokens and hosts) cannot change before its keys are written, and
        concurrent enrollments cannot pass a limit together. The ids of the keys written, in
        the order of ``decide``'s answer (None where it refused)."""
        t, k = m.enrollment_tokens, m.agent_keys
        tokens = sorted(set(token_hashes))
        hosts = sorted(set(host_ids))
        async with self.engine.begin() as conn:
            await conn.execute(update(t).where(t.c.token_hash.in_(tokens)).values(uses=t.c.uses))
            rows = await conn.execute(
                select(t.c.token_hash, *_ENROLL_COLS).where(t.c.token_hash.in_(tokens))
            )
            by_hash = {r[0]: EnrollmentRow(*r[1:]) for r in rows}
            live = await conn.execute(
                select(k.c.host_id).where(k.c.host_id.in_(hosts), k.c.revoked_ms.is_(None))
            )
            enrolled = await conn.scalar(
                select(func.count(func.distinct(k.c.host_id))).where(k.c.revoked_ms.is_(None))
            )
            grants = decide(by_hash, {r[0] for r in live}, int(enrolled or 0))
            granted = [g for g in grants if g is not None]
            if not granted:
                return [None] * len(grants)
            uses = Counter(g.token_id for g in granted)
            await conn.execute(
                update(t).where(t.c.id == bindparam("tid")).values(uses=t.c.uses + bindparam("n")),
                [{"tid": tid, "n": n} for tid, n in uses.items()],
            )
            replaced = sorted({g.host_id for g in granted if g.replace})
            if replaced:
                await conn.execute(
                    update(k)
                    .where(k.c.host_id.in_(replaced), k.c.revoked_ms.is_(None))
                    .values(revoked_ms=now)
                )
            await conn.execute(
                insert(k),
                [
                    {
                        "host_id": g.host_id,
                        "key_hash": g.key_hash,
                        "prefix": g.prefix,
                        "created_ms": now,
                        "revoked_ms": now if g.superseded else None,
                    }
                    for g in granted
                ],
            )
            ids = await conn.execute(
                select(k.c.key_hash, k.c.id).where(k.c.key_hash.in_([g.key_hash for g in granted]))
            )
            id_of = {r[0]: int(r[1]) for r in ids}
        return [None if g is None else id_of[g.key_hash] for g in grants]

    async def use_enrollment(self, token_id: int, default_max_hosts: int) -> bool:
        """Count one use; False when the token has no use left (a single-use token used
        already, a multi-use one at its ``max_hosts``, or ``default_max_hosts`` when it has
        none of its own). Atomic: concurrent enrollments cannot pass the limit together."""
        t = m.enrollment_tokens
        limit = func.coalesce(t.c.max_hosts, default_max_hosts)
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(t)
                .where(t.c.id == token_id)
                .where((t.c.uses == 0) | (t.c.single_use.is_(False) & (t.c.uses < limit)))
                .values(uses=t.c.uses + 1)
            )
        return bool(res.rowcount)
