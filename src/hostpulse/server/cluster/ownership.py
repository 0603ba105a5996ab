"""Which replica evaluates which host's alerts, and the claims that make each notification
go out once.

Membership: every replica adds itself to the sorted set ``hostpulse:members`` every
``HEARTBEAT_S`` with the expiry ``MEMBER_TTL_S`` later (on Redis' clock) and reads the live
members back in the same script; a replica that stops (SIGKILL, crash, network loss) drops out
when its entry expires, one that stops cleanly removes itself at once.

Ownership: rendezvous hashing over the live members: a host belongs to the member with the
highest ``blake2b(member, host)``. Every replica computes the same owner from the same member
list, a change of members moves only the hosts of the replica that left (or a share of each
replica's hosts to one that joined), and no coordination is needed beyond the member list.
While replicas see different member lists (for up to one heartbeat) a host may have two
owners or none; the claims below keep two owners from both notifying.

Claims: before a notification is handed to its channels, each alert in it is claimed in the
hash ``hostpulse:claim:<alert id>``: the state the receivers are being told (``firing:<sev>``
or ``resolved``), who tells them and whether it is done (``sending`` / ``sent``). A claim for
what the receivers were already told is refused, unless the replica that claimed it is no
longer a member and never finished: then the new owner sends it. A repeat reminder is not
claimed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from hostpulse.alerts.types import AlertView, Kind, Notification, State
from hostpulse.server.cluster.connection import PREFIX

logger = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
MEMBER_TTL_S = 5.0
"""A replica that stops heartbeating owns nothing after this (plus one heartbeat)."""
CLAIM_TTL_S = 7 * 86400
MEMBERS = f"{PREFIX}members"

# KEYS[1] members; ARGV: me, ttl ms ('' or 0 to leave). Returns the live members.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS[1] claim, KEYS[2] members; ARGV: target, me, ttl ms. 1 = claimed, 0 = not ours to send.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', KEYS[1], 'target', 'owner', 'status')
if cur[1] == ARGV[1] then
  if cur[3] == 'sent' then return 0 end
  if cur[2] ~= ARGV[2] then
    local alive = redis.call('ZSCORE', KEYS[2], cur[2])
    if alive and tonumber(alive) > now then return 0 end
  end
end
redis.call('HSET', KEYS[1], 'target', ARGV[1], 'owner', ARGV[2], 'status', 'sending')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] claim; ARGV: target, me. Marks our claim sent.
_SENT = """
local cur = redis.call('HMGET', KEYS[1], 'target', 'owner')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'status', 'sent')
end
return 0
"""


def rendezvous(members: list[str], host: str) -> str:
    def weight(member: str) -> bytes:
        text = f"{member}\x1f{host}".encode()
        return hashlib.blake2b(text, digest_size=8).digest()

    return max(members, key=weight)


class Membership:
    """This replica's view of the members and of the hosts it owns."""

    def __init__(self, client: Redis, me: str) -> None:
        self.me = me
        self.members: list[str] = [me]
        self._client = client
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._owned: dict[str, str] = {}
        self.version = 0
        """Incremented at each change of the member list."""

    async def beat(self, ttl_s: float = MEMBER_TTL_S) -> bool:
        """Renew this replica's entry (0: leave); True when the member list changed."""
        raw = await self._heartbeat(keys=[MEMBERS], args=[self.me, int(ttl_s * 1000)])
        members = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)
        if ttl_s > 0 and self.me not in members:
            members = sorted([*members, self.me])
        if members == self.members:
            return False
        logger.info("replicas changed", extra={"members": members, "me": self.me})
        self.members = members
        self._owned = {}
        self.version += 1
        return True

    def owner(self, host: str) -> str:
        """The replica that evaluates ``host``'s alerts (cached per member list)."""
        found = self._owned.get(host)
        if found is None:
            if len(self._owned) >= 1_000_000:
                self._owned = {}
            found = self._owned[host] = rendezvous(self.members, host)
        return found

    def owns(self, host: str) -> bool:
        """Whether this replica evaluates ``host``'s alerts."""
        return self.owner(host) == self.me


def _target(kind: Kind, view: AlertView) -> str | None:
    if kind is Kind.RESOLVED:
        return "resolved"
    if kind in (Kind.FIRING, Kind.ESCALATED, Kind.CHANGED) and view.state is State.FIRING:
        return f"firing:{int(view.severity or 0)}"
    return None  # repeats and tests are not claimed


class Claims:
    """``hostpulse.alerts.claims.NotificationClaims`` over Redis (see the module docstring)."""

    def __init__(self, client: Redis, me: str, ttl_s: float = CLAIM_TTL_S) -> None:
        self.me = me
        self._ttl_ms = int(ttl_s * 1000)
        self._claim = client.register_script(_CLAIM)
        self._sent = client.register_script(_SENT)
        self.refused = 0

    @staticmethod
    def _key(alert_id: str) -> str:
        return f"{PREFIX}claim:{alert_id}"

    async def claim(self, n: Notification) -> tuple[AlertView, ...]:
        """The alerts of ``n`` this replica may announce (all of them for unclaimed kinds)."""
        kept = []
        for view in n.alerts:
            target = _target(n.kind, view)
            if target is None:
                kept.append(view)
                continue
            ok = await self._claim(
                keys=[self._key(view.id), MEMBERS], args=[target, self.me, self._ttl_ms]
            )
            if int(ok):
                kept.append(view)
            else:
                self.refused += 1
                logger.info(
                    "notification already sent or being sent by another replica",
                    extra={"alert": view.id, "kind": n.kind.value},
                )
        return tuple(kept)

    async def sent(self, n: Notification) -> None:
        for view in n.alerts:
            target = _target(n.kind, view)
            if target is not None:
                await self._sent(keys=[self._key(view.id)], args=[target, self.me])


OwnsHost = Callable[[str], bool]
