"""Enrollments that arrive together are decided and written together (one transaction per
batch, not five round trips each), with the rules of one at a time: a fleet of hosts started
from one pasted command gets its keys in seconds, and no limit is passed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from hostpulse.server.auth import tokens
from hostpulse.server.auth.agent_keys import AgentKeyService
from hostpulse.server.auth.enrollment import Asked, decide
from hostpulse.server.auth.exceptions import AuthError, Conflict, Forbidden, Unauthenticated
from hostpulse.server.auth.principals import NewKey
from hostpulse.server.auth.repository import AuthRepository, EnrollDecision, EnrollmentRow, KeyGrant
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.store.db import make_engine


class CountingRepository(AuthRepository):
    batches: list[int]

    async def enroll_many(
        self, token_hashes: list[str], host_ids: list[str], now: int, decide: EnrollDecision
    ) -> list[int | None]:
        self.batches.append(len(host_ids))
        return await super().enroll_many(token_hashes, host_ids, now, decide)


async def _outcome(enrolling: Awaitable[NewKey]) -> NewKey | type[AuthError]:
    try:
        return await enrolling
    except AuthError as exc:
        return type(exc)


def test_a_fleet_enrolls_in_few_transactions_and_the_limits_hold(database_url: str) -> None:
    """On SQLite and on PostgreSQL."""

    async def main() -> None:
        engine = make_engine(database_url)
        try:
            repo = CountingRepository(engine)
            repo.batches = []
            await repo.create_tables()
            config = AuthConfig(max_hosts=250)
            keys = AgentKeyService(repo, config, lambda: 1_000)
            _, fleet = await keys.create_enrollment(None, 3600, single_use=False, max_hosts=200)
            _, other = await keys.create_enrollment(None, 3600, single_use=False, max_hosts=200)
            # 300 hosts on a token for 200, and 100 more on a second token: the token's limit
            # refuses 100 of the first; the server's max_hosts (250) 50 of the second
            asked = [keys.enroll(fleet, f"h{i}") for i in range(300)]
            asked += [keys.enroll(other, f"o{i}") for i in range(100)]
            got = await asyncio.gather(*(_outcome(a) for a in asked))
            first, second = got[:300], got[300:]
            assert sum(1 for g in first if g is Forbidden) == 100
            assert sum(1 for g in second if g is Forbidden) == 50
            issued = [g for g in got if isinstance(g, NewKey)]
            assert len(issued) == 250
            assert await repo.count_live_keys() == 250
            assert [e.uses for e in await keys.list_enrollments()] == [200, 50]
            assert len(repo.batches) <= 5, repo.batches  # not one transaction per host
            for new in issued[:20] + issued[-20:]:  # every key works, for its own host
                assert (await keys.authenticate(new.key)).host_id == new.host_id
        finally:
            await engine.dispose()

    asyncio.run(main())


def _row(token_id: int, **kw: object) -> EnrollmentRow:
    base: dict[str, object] = {
        "id": token_id,
        "host_id": None,
        "expires_ms": 10_000,
        "single_use": False,
        "uses": 0,
        "created_ms": 0,
    }
    return EnrollmentRow(**{**base, **kw})  # type: ignore[arg-type]


def _asked(token: str, host: str) -> Asked:
    return Asked(tokens.digest(token), host, tokens.new_token(tokens.AGENT_KEY_PREFIX))


def test_a_batch_is_decided_as_if_its_enrollments_came_one_after_another() -> None:
    config = AuthConfig(max_hosts=10, enrollment_max_hosts=1000)
    rows = {
        tokens.digest("fleet"): _row(1, max_hosts=3),
        tokens.digest("bound"): _row(2, host_id="db-1"),
        tokens.digest("once"): _row(3, single_use=True, max_hosts=1),
        tokens.digest("old"): _row(4, expires_ms=500),
    }
    asked = [
        _asked("fleet", "a"),
        _asked("fleet", "a"),  # enrolled by the request before it: an unbound token may not
        _asked("fleet", "live"),  # has a live key already
        _asked("bound", "db-1"),
        _asked("bound", "db-1"),  # the same bound host twice: the later key replaces the first
        _asked("bound", "web-1"),  # bound to another host
        _asked("once", "b"),
        _asked("once", "c"),  # single use, used by the request before it
        _asked("old", "d"),  # expired
        _asked("nope", "e"),  # unknown
        _asked("fleet", "f"),
        _asked("fleet", "g"),
        _asked("fleet", "h"),  # the token's fourth host: it allows three
    ]
    out = decide(asked, rows, {"live"}, 1, 1_000, config)
    kinds = [type(o) for o in out]
    assert kinds == [
        KeyGrant,
        Conflict,
        Conflict,
        KeyGrant,
        KeyGrant,
        Forbidden,
        KeyGrant,
        Unauthenticated,
        Unauthenticated,
        Unauthenticated,
        KeyGrant,
        KeyGrant,
        Forbidden,
    ]
    first_db, second_db = out[3], out[4]
    assert isinstance(first_db, KeyGrant) and isinstance(second_db, KeyGrant)
    assert first_db.superseded and first_db.replace
    assert not second_db.superseded and second_db.replace
    # the server's max_hosts counts hosts, not keys: db-1 re-enrolled counts once
    full = decide([_asked("fleet", "x"), _asked("fleet", "y")], rows, set(), 9, 1_000, config)
    assert [type(o) for o in full] == [KeyGrant, Forbidden]
    assert isinstance(full[1], Forbidden) and "max_hosts" in full[1].reason
