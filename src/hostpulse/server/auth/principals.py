"""Who is calling: a signed-in user or a host's agent key."""

from __future__ import annotations

from dataclasses import dataclass

from hostpulse.server.auth.roles import Role


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role


@dataclass(frozen=True, slots=True)
class Agent:
    key_id: int
    host_id: str


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as created: ``key`` is shown once and never stored."""

    id: int
    host_id: str
    key: str
