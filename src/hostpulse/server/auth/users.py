"""Users and sessions: accounts with roles, login (throttled), access and refresh tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hostpulse.server.auth import passwords, tokens
from hostpulse.server.auth.exceptions import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from hostpulse.server.auth.gate import HashGate
from hostpulse.server.auth.principals import Tokens, User
from hostpulse.server.auth.repository import AuthRepository, UserRow
from hostpulse.server.auth.roles import Role
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.server.auth.throttle import FailureThrottle, LoginThrottle

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
FIRST_ADMIN = "admin"
BAD_LOGIN = "invalid username or password"
BAD_REFRESH = "invalid, expired or revoked refresh token"
ROLE_CACHE_TTL_S = 10.0
"""A user's role is re-read after this long, so a user removed (or a role changed) by another
process (``hostpulse user remove``, another replica) loses access within it."""


def check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            "username: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(f"role: must be one of {', '.join(r.value for r in Role)}") from None


class UserService:
    def __init__(
        self,
        repo: AuthRepository,
        secret: bytes,
        config: AuthConfig,
        clock_ms: Callable[[], int],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self._secret = secret
        self.config = config
        self._now = clock_ms
        self.throttle: LoginThrottle = FailureThrottle(
            config.login_failures, config.login_window_s, monotonic
        )
        self.changed: Callable[[], None] = lambda: None
        """Called after a user is created, changed or deleted here (the cluster tells the
        other replicas, which then ``forget_roles``)."""
        self.hashing = HashGate(config.hash_concurrency, config.hash_queue)
        self._monotonic = monotonic
        # username -> (role or None for no such user, when it was read)
        self._roles: dict[str, tuple[Role | None, float]] = {}

    # -- accounts -----------------------------------------------------------------------------

    async def ensure_admin(self, password: str | None) -> str | None:
        """When there is no admin (the first start), create ``admin``: with ``password`` when
        given, else a generated one, which is returned (to be shown once). None otherwise."""
        if await self.repo.count_users(Role.admin.value) > 0:
            return None
        if await self.repo.get_user(FIRST_ADMIN) is not None:
            raise Conflict(
                f"there is no admin and the user {FIRST_ADMIN!r} exists with another role; "
                "add one: hostpulse user add NAME --role admin"
            )
        generated = passwords.generate_password() if password is None else None
        try:
            await self.create(FIRST_ADMIN, password or generated or "", Role.admin)
        except Conflict:
            # replicas starting together on an empty database: another one created it first
            if await self.repo.count_users(Role.admin.value) > 0:
                return None
            raise
        return generated

    async def create(self, username: str, password: str, role: Role) -> UserRow:
        check_username(username)
        passwords.check_password(password)
        hashed = await self.hashing.run(passwords.hash_password, password)
        if not await self.repo.insert_user(username, hashed, role.value, self._now()):
            raise Conflict(f"user {username!r} exists")
        self._users_changed()
        row = await self.repo.get_user(username)
        assert row is not None
        return row

    async def list_users(self) -> list[UserRow]:
        return await self.repo.list_users()

    async def get(self, username: str) -> UserRow:
        row = await self.repo.get_user(username)
        if row is None:
            raise NotFound(f"no user {username!r}")
        return row

    async def update(
        self,
        actor: User,
        username: str,
        *,
        role: Role | None,
        password: str | None,
        current_password: str | None = None,
    ) -> UserRow:
        """Admins change anyone; other users only their own password (object check). Changing
        one's own password needs the current one (``current_password``), so that a stolen
        access token cannot take the account over; wrong ones count against the account's
        login throttle. (The operator of ``hostpulse user passwd`` acts as a user of another
        name, which no account can have.)"""
        if actor.role is not Role.admin and (actor.username != username or role is not None):
            raise Forbidden("only an admin may change other users or roles")
        row = await self.get(username)
        if password is not None and actor.username == username:
            await self._confirm_current(row, current_password)
        if role is not None and role is not Role.admin and row.role == Role.admin.value:
            await self._keep_an_admin(username)
        hashed = None
        if password is not None:
            passwords.check_password(password)
            hashed = await self.hashing.run(passwords.hash_password, password)
        await self.repo.update_user(username, self._now(), role=role, password_hash=hashed)
        if hashed is not None:  # a new password ends every session of the old one
            await self.repo.revoke_user_refresh(username, self._now())
        self._users_changed()
        return await self.get(username)

    async def delete(self, username: str) -> None:
        row = await self.get(username)
        if row.role == Role.admin.value:
            await self._keep_an_admin(username)
        await self.repo.delete_user(username, self._now())
        self._users_changed()

    def use_secret(self, secret: bytes) -> None:
        """Sign and check access tokens with ``secret`` from now on (the replicas' shared
        one, so that a token issued by one is accepted by every other)."""
        self._secret = secret

    def forget_roles(self) -> None:
        """Drop the cached roles: the next request of each user reads its role again."""
        self._roles.clear()

    def _users_changed(self) -> None:
        self.forget_roles()
        self.changed()

    async def _confirm_current(self, row: UserRow, current_password: str | None) -> None:
        if current_password is None:
            raise InvalidInput("current_password: required to change your own password")
        key = f"user:{row.username.lower()}"
        stamp = await self.throttle.attempt([(key, f"account {row.username!r}")])
        try:
            ok = await self.hashing.run(
                passwords.verify_password, row.password_hash, current_password
            )
        except Busy:  # nothing was checked
            await self.throttle.release(key, stamp)
            raise
        if not ok:
            raise Forbidden("current_password: wrong password")
        await self.throttle.release(key, stamp)

    async def _keep_an_admin(self, username: str) -> None:
        if await self.repo.count_users(Role.admin.value) <= 1:
            raise Conflict(f"{username!r} is the last admin; make another user admin first")

    # -- sessions -----------------------------------------------------------------------------

    async def login(self, username: str, password: str, address: str) -> Tokens:
        """Tokens for a right password. Throttled (429) after too many failures for the account
        or from the address; Unauthenticated otherwise (same reason for a wrong name)."""
        keys = [(f"user:{username.lower()}", f"account {username!r}"), (f"addr:{address}", address)]
        # counted before the (slow) check, so that concurrent attempts cannot all pass the
        # throttle; taken back when the password is right or no check was made (Busy)
        stamp = await self.throttle.attempt(keys)
        try:
            row = await self.repo.get_user(username)
            ok = await self.hashing.run(
                passwords.verify_password, row.password_hash if row else None, password
            )
        except Busy:
            for key, _ in keys:
                await self.throttle.release(key, stamp)
            raise
        if row is None or not ok:
            raise Unauthenticated(BAD_LOGIN)
        await self.throttle.succeeded(keys[0][0])
        await self.throttle.release(keys[1][0], stamp)
        return await self._issue(User(row.username, Role(row.role)))

    async def refresh(self, refresh_token: str) -> Tokens:
        """A new pair for a live refresh token, which is revoked (rotation). Presenting a
        revoked one again revokes every session of its user (it was probably stolen)."""
        row = await self.repo.get_refresh(tokens.digest(refresh_token))
        now = self._now()
        if row is None:
            raise Unauthenticated(BAD_REFRESH)
        if row.revoked_ms is not None:
            await self.repo.revoke_user_refresh(row.username, now)
            raise Unauthenticated(BAD_REFRESH)
        if row.expires_ms <= now or not await self.repo.revoke_refresh(row.id, now):
            raise Unauthenticated(BAD_REFRESH)
        role = await self.role_of(row.username)
        if role is None:
            raise Unauthenticated(BAD_REFRESH)
        return await self._issue(User(row.username, role))

    async def logout(self, refresh_token: str) -> None:
        row = await self.repo.get_refresh(tokens.digest(refresh_token))
        if row is not None:
            await self.repo.revoke_refresh(row.id, self._now())

    async def _issue(self, user: User) -> Tokens:
        refresh = tokens.new_token(tokens.REFRESH_PREFIX)
        now = self._now()
        await self.repo.insert_refresh(
            tokens.digest(refresh), user.username, now, now + self.config.refresh_ttl_s * 1000
        )
        access = tokens.issue_access(self._secret, user.username, self.config.access_ttl_s)
        return Tokens(access, refresh, self.config.access_ttl_s, user)

    # -- requests -----------------------------------------------------------------------------

    async def role_of(self, username: str) -> Role | None:
        now = self._monotonic()
        cached = self._roles.get(username)
        if cached is not None and now - cached[1] < ROLE_CACHE_TTL_S:
            return cached[0]
        row = await self.repo.get_user(username)
        role = None if row is None else Role(row.role)
        self._roles[username] = (role, now)
        return role

    async def from_access_token(self, token: str) -> User:
        """The user of a valid access token whose account still exists (its current role)."""
        username = tokens.read_access(self._secret, token)
        role = await self.role_of(username)
        if role is None:
            raise Unauthenticated("the user of this token no longer exists")
        return User(username, role)

    def looks_valid(self, token: str) -> bool:
        try:
            tokens.read_access(self._secret, token)
        except Unauthenticated:
            return False
        return True
