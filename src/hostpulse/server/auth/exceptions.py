"""What the auth service refuses, each with the HTTP status a route answers with."""

from __future__ import annotations


class AuthError(Exception):
    """Base: ``status`` and a ``reason`` safe to show to the client (never a secret)."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthenticated(AuthError):
    """No credentials, or credentials that are wrong, expired or revoked (401)."""

    status = 401


class Forbidden(AuthError):
    """Authenticated, but not allowed to do this (403)."""

    status = 403


class NotFound(AuthError):
    status = 404


class Conflict(AuthError):
    status = 409


class InvalidInput(AuthError):
    """E.g. a password shorter than 12 characters (422)."""

    status = 422


class Throttled(AuthError):
    """Too many requests or failed logins: answer 429 with ``Retry-After``."""

    status = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = max(1, retry_after)


class Busy(Throttled):
    """Too much work of this kind in progress (password checks): answer 503 with
    ``Retry-After``; nothing was checked."""

    status = 503
