"""What the dashboards service refuses; each carries the HTTP status a route answers with."""

from __future__ import annotations


class DashboardError(Exception):
    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(DashboardError):
    """No such board, or one the caller may not see (never tells which)."""

    status = 404


class Forbidden(DashboardError):
    """The caller sees the board but may not change it."""

    status = 403


class Conflict(DashboardError):
    """A save from an older version, or a user over the boards-per-user bound."""

    status = 409


class Invalid(DashboardError):
    """A board that passed the schema but not this server's catalog."""

    status = 422
