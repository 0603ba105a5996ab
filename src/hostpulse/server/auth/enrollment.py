"""Enrollment: exchanging an enrollment token for a host's agent key, many at a time.

Each enrollment needs the token's row, whether the host has a live key and how many hosts are
enrolled, then counts a use of the token and writes the key. One request at a time that was
five round trips to the database, two of them write transactions: about 50 enrollments a
second, so a fleet of 10,000 hosts started from one pasted command took minutes to get its
keys. Requests that arrive while a batch is being written now wait for the next one, and each
batch (at most ``BATCH``) is decided and written in one transaction
(``AuthRepository.enroll_many``), in arrival order and with the rules of one at a time
(``decide``): the token's ``max_hosts``, single use, a host bound to the token, a live key
not taken over by an unbound token, and the server's ``max_hosts`` hold exactly."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from hostpulse.server.auth import tokens
from hostpulse.server.auth.exceptions import AuthError, Conflict, Forbidden, Unauthenticated
from hostpulse.server.auth.principals import NewKey
from hostpulse.server.auth.repository import AuthRepository, EnrollmentRow, KeyGrant
from hostpulse.server.auth.settings import AuthConfig

logger = logging.getLogger(__name__)

BAD_ENROLL = "unknown, expired or already used enrollment token"
PREFIX_SHOWN = 8
BATCH = 500
"""Enrollments decided in one transaction at most (bound parameters of one statement)."""


@dataclass(frozen=True, slots=True)
class Asked:
    token_hash: str
    host_id: str
    key: str  # the new key, generated before the transaction; stored only as its digest


def max_hosts_of(row: EnrollmentRow, config: AuthConfig) -> int:
    """How many hosts (enrollments) the token allows in all."""
    if row.single_use:
        return 1
    return row.max_hosts or config.enrollment_max_hosts


def already_enrolled(host_id: str) -> Conflict:
    return Conflict(
        f"host {host_id!r} is already enrolled; to enroll it again use a token bound to it "
        f"(hostpulse token create --host {shlex.quote(host_id)}) or revoke its agent key "
        "first"
    )


def used_up(token_id: int, limit: int) -> Forbidden:
    return Forbidden(
        f"enrollment token {token_id} has enrolled {limit} hosts, all it allows "
        "(its max_hosts; by default enrollment_max_hosts): create another token"
    )


def decide(
    asked: list[Asked],
    rows: dict[str, EnrollmentRow],
    live: set[str],
    enrolled: int,
    now_ms: int,
    config: AuthConfig,
) -> list[KeyGrant | AuthError]:
    """For each enrollment in order, the key to write or why it is refused, as if they came
    one after another: ``rows`` the tokens by hash, ``live`` the hosts asked for that have a
    live key, ``enrolled`` the hosts with a live key in all."""
    uses = {row.id: row.uses for row in rows.values()}
    live = set(live)
    out: list[KeyGrant | AuthError] = []
    last: dict[str, int] = {}  # host -> index of its latest grant
    for i, a in enumerate(asked):
        row = rows.get(a.token_hash)
        if row is None or row.expires_ms <= now_ms:
            out.append(Unauthenticated(BAD_ENROLL))
            continue
        if row.host_id is not None and row.host_id != a.host_id:
            out.append(
                Forbidden(f"this enrollment token is for host {row.host_id}, not {a.host_id}")
            )
            continue
        bound = row.host_id == a.host_id
        was_live = a.host_id in live
        limit = max_hosts_of(row, config)
        if not bound and was_live:
            out.append(already_enrolled(a.host_id))
        elif row.single_use and uses[row.id]:
            out.append(Unauthenticated(BAD_ENROLL))
        elif uses[row.id] >= limit:
            out.append(used_up(row.id, limit))
        elif not was_live and enrolled >= config.max_hosts:
            out.append(
                Forbidden(
                    f"the server has {config.max_hosts} enrolled hosts, its limit "
                    "(max_hosts): revoke the keys of hosts that are gone, or raise "
                    "HOSTPULSE_MAX_HOSTS"
                )
            )
        else:
            uses[row.id] += 1
            if not was_live:
                enrolled += 1
                live.add(a.host_id)
            prefix = a.key[: len(tokens.AGENT_KEY_PREFIX) + PREFIX_SHOWN]
            out.append(KeyGrant(row.id, a.host_id, tokens.digest(a.key), prefix, bound))
            if a.host_id in last:  # the earlier key of this batch is replaced at once
                j = last[a.host_id]
                earlier = out[j]
                assert isinstance(earlier, KeyGrant)
                out[j] = KeyGrant(
                    earlier.token_id,
                    earlier.host_id,
                    earlier.key_hash,
                    earlier.prefix,
                    earlier.replace,
                    superseded=True,
                )
            last[a.host_id] = i
    return out


class Enroller:
    """Queues enrollment requests and writes them a batch at a time (one batch in flight,
    like a group commit). ``issued`` is told of the hosts that got a new key."""

    def __init__(
        self,
        repo: AuthRepository,
        config: AuthConfig,
        clock_ms: Callable[[], int],
        issued: Callable[[list[str]], None],
    ) -> None:
        self.repo = repo
        self.config = config
        self._now = clock_ms
        self._issued = issued
        self._queue: list[tuple[Asked, asyncio.Future[NewKey]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def enroll(self, token: str, host_id: str) -> NewKey:
        future: asyncio.Future[NewKey] = asyncio.get_running_loop().create_future()
        self._queue.append(
            (
                Asked(tokens.digest(token), host_id, tokens.new_token(tokens.AGENT_KEY_PREFIX)),
                future,
            )
        )
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        # a caller that goes away does not cancel the batch the others wait for
        return await asyncio.shield(future)

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
            await self._write(batch)

    async def _write(self, batch: list[tuple[Asked, asyncio.Future[NewKey]]]) -> None:
        asked = [a for a, _ in batch]
        now = self._now()
        answers: list[KeyGrant | AuthError] = []

        def grants(
            rows: dict[str, EnrollmentRow], live: set[str], enrolled: int
        ) -> list[KeyGrant | None]:
            answers[:] = decide(asked, rows, live, enrolled, now, self.config)
            return [g if isinstance(g, KeyGrant) else None for g in answers]

        try:
            ids = await self.repo.enroll_many(
                [a.token_hash for a in asked], [a.host_id for a in asked], now, grants
            )
        except Exception as exc:  # every waiter gets the error (a 5xx), as one query would
            logger.warning("enrolling %d hosts failed: %s", len(batch), exc)
            for _, future in batch:
                future.set_exception(exc)
                future.exception()  # retrieved: its caller may have gone
            return
        hosts = []
        for (a, future), answer, key_id in zip(batch, answers, ids, strict=True):
            if key_id is None:
                assert isinstance(answer, AuthError)
                future.set_exception(answer)
                future.exception()  # retrieved: its caller may have gone
            else:
                hosts.append(a.host_id)
                future.set_result(NewKey(key_id, a.host_id, a.key))
        if hosts:
            self._issued(hosts)
