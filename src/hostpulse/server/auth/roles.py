"""Roles, ordered: viewer < editor < admin. A route names the least role it needs."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    """Reads everything (hosts, metrics, alerts)."""
    editor = "editor"
    """Also writes alert rules, channels and silences and acknowledges alerts."""
    admin = "admin"
    """Also manages users, agent keys and enrollment tokens."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}
