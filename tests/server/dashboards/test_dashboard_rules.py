"""Who may see, save and manage (share, delete) a board, for every role, ownership and sharing
level: the one table docs/security.md shows, checked against the service's rules."""

from __future__ import annotations

import pytest

from hostpulse.server.auth.principals import User
from hostpulse.server.auth.roles import Role
from hostpulse.server.dashboards.repository import BoardRow
from hostpulse.server.dashboards.service import can_edit, can_manage, can_see


def board(owner: str, sharing: str) -> BoardRow:
    return BoardRow("b1", owner, "n", sharing, {}, 1, 0, 0)


# (role, owns it, sharing) -> (sees, saves, manages)
RULES = {
    ("viewer", False, "private"): (False, False, False),
    ("viewer", False, "view"): (True, False, False),
    ("viewer", False, "edit"): (True, False, False),
    # a viewer who owns a board (made while an editor, then demoted) only reads it
    ("viewer", True, "private"): (True, False, False),
    ("editor", False, "private"): (False, False, False),
    ("editor", False, "view"): (True, False, False),
    ("editor", False, "edit"): (True, True, False),
    ("editor", True, "private"): (True, True, True),
    ("editor", True, "view"): (True, True, True),
    ("admin", False, "private"): (True, True, True),
    ("admin", False, "view"): (True, True, True),
    ("admin", True, "edit"): (True, True, True),
}


@pytest.mark.parametrize(("who", "expected"), RULES.items(), ids=str)
def test_rules(who: tuple[str, bool, str], expected: tuple[bool, bool, bool]) -> None:
    role, owns, sharing = who
    user = User("me", Role(role))
    row = board("me" if owns else "someone", sharing)
    assert (can_see(user, row), can_edit(user, row), can_manage(user, row)) == expected
