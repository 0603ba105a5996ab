"""The agent keys that many requests bring at once are read from the database together: a
fleet of 300 hosts whose cache entries expire at the same moment costs a few queries, not 300
on a pool of a few connections (where, at 1,000 hosts, requests waited seconds for a turn)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hostpulse.server.auth.agent_keys import (
    CACHE_TTL_S,
    KEY_CACHE_TTL_S,
    REFRESH_GATHER_S,
    REFRESH_SHARE,
    AgentKeyService,
)
from hostpulse.server.auth.exceptions import Unauthenticated
from hostpulse.server.auth.repository import AuthRepository, KeyRow
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.server.auth.tokens import digest


@contextlib.asynccontextmanager
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh SQLite file, disposed of afterwards."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hp.db'}")
    try:
        yield engine
    finally:
        await engine.dispose()


class CountingRepository(AuthRepository):
    """The real repository on SQLite, counting the keys each ``keys_by_hash`` query asks for."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.queries: list[int] = []

    @classmethod
    async def created(cls, engine: AsyncEngine) -> CountingRepository:
        repo = cls(engine)
        await repo.create_tables()
        return repo

    async def keys_by_hash(self, key_hashes: list[str]) -> dict[str, KeyRow]:
        self.queries.append(len(key_hashes))
        return await super().keys_by_hash(key_hashes)


def test_concurrent_lookups_share_queries_and_get_their_own_answer(tmp_path: Path) -> None:
    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            now = [0.0]
            keys = AgentKeyService(repo, AuthConfig(), lambda: 1_000, lambda: now[0])
            issued = [await keys.issue(f"host-{i}") for i in range(300)]
            revoked = issued[7]
            await keys.revoke(revoked.id)

            async def who(key: str) -> str:
                try:
                    return (await keys.authenticate(key)).host_id
                except Unauthenticated:
                    return "refused"

            wanted = [k.key for k in issued] + ["hpk_" + "x" * 40]
            got = await asyncio.gather(*(who(k) for k in wanted))
            expected = [f"host-{i}" for i in range(300)] + ["refused"]
            expected[7] = "refused"
            assert got == expected
            assert sum(repo.queries) == len(wanted) and len(repo.queries) <= 3

            repo.queries.clear()
            now[0] += CACHE_TTL_S + 1  # every entry expires at once: read again, together
            got = await asyncio.gather(*(who(k) for k in wanted))
            assert got == expected
            assert 1 <= len(repo.queries) <= 3

    asyncio.run(main())


def test_a_failed_read_fails_its_requests_and_the_next_read_works(tmp_path: Path) -> None:
    class Flaky(AuthRepository):
        fail = True

        async def keys_by_hash(self, key_hashes: list[str]) -> dict[str, KeyRow]:
            if self.fail:
                self.fail = False
                raise OSError("disk I/O error")
            return await super().keys_by_hash(key_hashes)

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = Flaky(engine)
            await repo.create_tables()
            keys = AgentKeyService(repo, AuthConfig(), lambda: 1_000)
            new = await keys.issue("web-1")
            with pytest.raises(OSError):
                await keys.authenticate(new.key)
            assert (await keys.authenticate(new.key)).host_id == "web-1"

    asyncio.run(main())


def test_an_entry_past_a_quarter_of_its_life_is_read_again_while_it_is_used(tmp_path: Path) -> None:
    """An agent reporting every 5 s never waits for the database; a revocation by another
    process is still seen within CACHE_TTL_S."""

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            now = [0.0]
            keys = AgentKeyService(
                repo, AuthConfig(), lambda: 1_000, lambda: now[0], refresh_gather_s=0.01
            )
            new = await keys.issue("web-1")
            assert (await keys.authenticate(new.key)).host_id == "web-1"
            assert repo.queries == [1]
            now[0] += CACHE_TTL_S * REFRESH_SHARE - 0.5
            assert (await keys.authenticate(new.key)).host_id == "web-1"
            assert repo.queries == [1]  # young enough: no reading
            await AuthRepository(engine).revoke_key(new.id, 2_000)  # another process
            now[0] += 1.0
            assert (await keys.authenticate(new.key)).host_id == "web-1"  # cached, still valid
            for _ in range(100):  # the background reading finishes within a few loop turns
                if len(repo.queries) == 2 and keys._reader is not None and keys._reader.done():
                    break
                await asyncio.sleep(0.01)
            assert repo.queries == [1, 1]
            with pytest.raises(Unauthenticated):
                await keys.authenticate(new.key)

    asyncio.run(main())


def test_entries_past_a_quarter_of_their_life_are_read_again_together(tmp_path: Path) -> None:
    """A fleet reporting every 5 s asks for a refresh with nearly every request: the entries
    wanted within REFRESH_GATHER_S are read in one query, and no request waits for it."""

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            now = [0.0]
            keys = AgentKeyService(
                repo, AuthConfig(), lambda: 1_000, lambda: now[0], refresh_gather_s=0.2
            )
            issued = [await keys.issue(f"host-{i}") for i in range(300)]
            await asyncio.gather(*(keys.authenticate(k.key) for k in issued))
            repo.queries.clear()
            now[0] += CACHE_TTL_S * REFRESH_SHARE + 0.5
            for k in issued:  # one at a time, as a fleet's requests come in
                assert (await keys.authenticate(k.key)).host_id == k.host_id
                await asyncio.sleep(0)
            assert repo.queries == []  # nobody waited for a reading
            await AuthRepository(engine).revoke_key(issued[3].id, 2_000)  # another process
            for _ in range(100):
                if repo.queries and keys._reader is not None and keys._reader.done():
                    break
                await asyncio.sleep(0.02)
            assert repo.queries == [300]  # all of them in one query
            with pytest.raises(Unauthenticated):  # the refresh saw the revocation
                await keys.authenticate(issued[3].key)
            assert (await keys.authenticate(issued[4].key)).host_id == "host-4"
            assert repo.queries == [300]  # the others were fresh again

    asyncio.run(main())


def test_long_lived_entries_still_learn_another_process_revocation(tmp_path: Path) -> None:
    """Replicas keep keys longer (``cache_ttl_s``) and count the revoked keys instead: a key
    revoked by another process (here: a second service on the same database, as ``hostpulse
    key revoke`` or another replica) is refused after the next count, and the keys that were
    not revoked keep working."""

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            now = [0.0]
            keys = AgentKeyService(repo, AuthConfig(), lambda: 1_000, lambda: now[0])
            keys.cache_ttl_s = 600.0
            other = AgentKeyService(AuthRepository(engine), AuthConfig(), lambda: 2_000)
            a, b = await keys.issue("web-1"), await keys.issue("web-2")
            assert await keys.check_revocations() is False  # the first count: nothing to compare
            assert (await keys.authenticate(a.key)).host_id == "web-1"
            assert (await keys.authenticate(b.key)).host_id == "web-2"

            repo.queries.clear()
            now[0] += CACHE_TTL_S * 3  # far past the single server's lifetime: still cached
            assert (await keys.authenticate(a.key)).host_id == "web-1"
            assert repo.queries == []
            assert await keys.check_revocations() is False  # nothing revoked: nothing re-read

            await other.revoke(a.id)  # another process; this service is not told
            assert (await keys.authenticate(a.key)).host_id == "web-1"  # until the count
            assert await keys.check_revocations() is True
            with pytest.raises(Unauthenticated):
                await keys.authenticate(a.key)
            assert (await keys.authenticate(b.key)).host_id == "web-2"
            assert await keys.check_revocations() is False

    asyncio.run(main())


def test_an_agent_reporting_every_5_s_never_waits_for_its_key(tmp_path: Path) -> None:
    """The default agent interval is half the entry's life: with the refresh asked for only
    past half of it (before ``REFRESH_SHARE``), every second report came just before the entry
    expired, and any delay (network, a queue in the server) made it a miss that waited for the
    database (the fleet bench saw hundreds of such reads a minute). A report up to 1 s late,
    with the background reading gathered for up to 1 s, still finds its key cached."""

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            now = [0.0]
            keys = AgentKeyService(
                repo, AuthConfig(), lambda: 1_000, lambda: now[0], refresh_gather_s=0.001
            )
            new = await keys.issue("web-1")
            rng = random.Random(17)
            waited = 0
            for k in range(200):
                now[0] = 5.0 * k + rng.uniform(0.0, 1.0)  # the report, late by up to 1 s
                before = len(repo.queries)
                assert (await keys.authenticate(new.key)).host_id == "web-1"
                if k and len(repo.queries) != before:
                    waited += 1
                if keys._refresh_due is not None:  # its reading starts within the gathering
                    now[0] += rng.uniform(0.0, REFRESH_GATHER_S)
                    for _ in range(200):
                        await asyncio.sleep(0.002)
                        if keys._refresh_due is None and not keys._wanted:
                            break
            assert waited == 0
            assert len(repo.queries) > 200 * 5.0 / CACHE_TTL_S  # still read again regularly

    asyncio.run(main())


def test_keys_by_hash_answers_exactly_the_keys_asked_for_at_every_list_length(
    tmp_path: Path,
) -> None:
    """The ``IN`` list is padded to a power of two (one statement text per size): the answer
    holds the asked keys that exist, revoked ones too, and nothing else, at every length."""

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            keys = AgentKeyService(repo, AuthConfig(), lambda: 1_000, lambda: 0.0)
            issued = [await keys.issue(f"host-{i}") for i in range(12)]
            await keys.revoke(issued[3].id)
            hashes = [digest(k.key) for k in issued]
            rnd = random.Random(5)
            for n in range(1, 21):
                asked = rnd.sample(hashes, min(n, len(hashes))) + [
                    f"unknown-{i}" for i in range(max(0, n - len(hashes)))
                ]
                got = await repo.keys_by_hash(asked)
                assert set(got) == {h for h in asked if h in hashes}, n
                for h, row in got.items():
                    assert row.host_id == f"host-{hashes.index(h)}"
                    assert (row.revoked_ms is not None) == (h == hashes[3])
            assert await repo.keys_by_hash([]) == {}

    asyncio.run(main())


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(200):  # 10 s at most
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within 10 s: {what}")


def test_a_server_counts_revocations_instead_of_reading_every_key_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's watch (``watch_revocations``, run by the auth service for its lifetime):
    while the revoked keys can be counted, keys stay cached for ``KEY_CACHE_TTL_S`` (a fleet of
    10,000 hosts no longer reads a thousand keys a second) and a revocation by another process
    is still refused after the next count; while the count fails (the table cannot be read),
    keys expire after the single server's 10 s again, with one warning, until it works."""

    async def main() -> None:
        async with sqlite_engine(tmp_path) as engine:
            repo = await CountingRepository.created(engine)
            keys = AgentKeyService(repo, AuthConfig(), lambda: 1_000)
            other = AgentKeyService(AuthRepository(engine), AuthConfig(), lambda: 2_000)
            a, b = await keys.issue("web-1"), await keys.issue("web-2")
            stop = asyncio.Event()
            watch = asyncio.create_task(keys.watch_revocations(stop, every_s=0.05))
            try:
                await _until(lambda: keys.cache_ttl_s == KEY_CACHE_TTL_S, "long-lived keys")
                assert (await keys.authenticate(a.key)).host_id == "web-1"
                assert (await keys.authenticate(b.key)).host_id == "web-2"

                await other.revoke(a.id)  # another process; this service is not told
                refused = False
                for _ in range(200):
                    try:
                        await keys.authenticate(a.key)
                    except Unauthenticated:
                        refused = True
                        break
                    await asyncio.sleep(0.05)
                assert refused, "a key revoked elsewhere was still accepted after 10 s"
                assert (await keys.authenticate(b.key)).host_id == "web-2"

                caplog.clear()
                async with engine.begin() as conn:
                    await conn.execute(text("ALTER TABLE auth_agent_keys RENAME TO away"))
                await _until(lambda: keys.cache_ttl_s == CACHE_TTL_S, "back to 10 s")
                await asyncio.sleep(0.3)  # several more failed counts: still one warning
                warnings = [r for r in caplog.records if "cannot count revoked" in r.message]
                assert len(warnings) == 1
                async with engine.begin() as conn:
                    await conn.execute(text("ALTER TABLE away RENAME TO auth_agent_keys"))
                await _until(lambda: keys.cache_ttl_s == KEY_CACHE_TTL_S, "long-lived again")
            finally:
                stop.set()
                await asyncio.wait_for(watch, 5)

    asyncio.run(main())
