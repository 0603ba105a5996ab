"""Who may do what with a board, and the board's life (create, save, delete, import, export).

The rules, consistent with the roles (viewer < editor < admin):

- everyone signed in sees their own boards and every shared one (``view`` or ``edit``); admins
  see every board; a private board of someone else is "not found" (its existence is not told);
- editors and admins create boards (viewers cannot write anything, as everywhere else);
- the owner (while still an editor) and admins save, share, and delete a board; other editors
  also save a board shared as ``edit``, but neither delete it nor change its sharing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from hostpulse.server.auth.principals import User
from hostpulse.server.auth.roles import Role
from hostpulse.server.dashboards import limits as lim
from hostpulse.server.dashboards.exceptions import Conflict, Forbidden, Invalid, NotFound
from hostpulse.server.dashboards.repository import BoardRow, DashboardRepository
from hostpulse.server.dashboards.schema import BoardExport, BoardIn, BoardSpec
from hostpulse.server.dashboards.templates import TEMPLATES


def can_see(user: User, row: BoardRow) -> bool:
    return user.role is Role.admin or row.owner == user.username or row.sharing != "private"


def can_edit(user: User, row: BoardRow) -> bool:
    if not user.role.allows(Role.editor):
        return False
    return user.role is Role.admin or row.owner == user.username or row.sharing == "edit"


def can_manage(user: User, row: BoardRow) -> bool:
    """Delete it or change its sharing."""
    if not user.role.allows(Role.editor):
        return False
    return user.role is Role.admin or row.owner == user.username


def _check(spec: BoardSpec) -> None:
    problems = spec.unknown_metrics()
    if problems:
        raise Invalid("; ".join(problems))


class DashboardService:
    def __init__(
        self,
        repo: DashboardRepository,
        clock: Callable[[], float],
        *,
        max_per_user: int = lim.MAX_BOARDS_PER_USER,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.max_per_user = max_per_user
        self.new_id = new_id

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def list(self, user: User) -> list[BoardRow]:
        return await self.repo.visible_to(None if user.role is Role.admin else user.username)

    async def get(self, user: User, board_id: str) -> BoardRow:
        row = await self.repo.get(board_id)
        if row is None or not can_see(user, row):
            raise NotFound(f"no dashboard {board_id!r}")
        return row

    async def create(self, user: User, board: BoardIn) -> BoardRow:
        if not user.role.allows(Role.editor):
            raise Forbidden(f"creating a dashboard needs the editor role (you are {user.role})")
        _check(board.spec)
        now = self._now()
        row = BoardRow(
            id=self.new_id(),
            owner=user.username,
            name=board.name,
            sharing=board.sharing,
            spec=board.spec.model_dump(mode="json"),
            version=1,
            created_ms=now,
            updated_ms=now,
        )
        if not await self.repo.insert(row, self.max_per_user):
            raise Conflict(
                f"you have {self.max_per_user} dashboards, the most one user may have; "
                "delete one first"
            )
        return row

    async def save(self, user: User, board_id: str, board: BoardIn) -> BoardRow:
        row = await self.get(user, board_id)
        if not can_edit(user, row):
            raise Forbidden("this dashboard is shared read-only with you")
        if board.sharing != row.sharing and not can_manage(user, row):
            raise Forbidden("only the owner or an admin changes who a dashboard is shared with")
        _check(board.spec)
        saved = await self.repo.update(
            board_id,
            expected_version=board.version,
            name=board.name,
            sharing=board.sharing,
            spec=board.spec.model_dump(mode="json"),
            now_ms=self._now(),
        )
        if saved is None:
            if await self.repo.get(board_id) is None:
                raise NotFound(f"no dashboard {board_id!r}")
            raise Conflict(
                f"the dashboard was saved by someone else since version {board.version}; "
                "reload it and apply your change again"
            )
        return saved

    async def delete(self, user: User, board_id: str) -> None:
        row = await self.get(user, board_id)
        if not can_manage(user, row):
            raise Forbidden("only the owner or an admin deletes a dashboard")
        if not await self.repo.delete(board_id):
            raise NotFound(f"no dashboard {board_id!r}")

    async def export(self, user: User, board_id: str) -> BoardExport:
        row = await self.get(user, board_id)
        return BoardExport(name=row.name, spec=BoardSpec.model_validate(row.spec))

    async def import_(self, user: User, doc: BoardExport) -> BoardRow:
        """A new private board of ``user`` from a file (or a template)."""
        return await self.create(user, BoardIn(name=doc.name, spec=doc.spec))

    @staticmethod
    def templates() -> dict[str, BoardExport]:
        return TEMPLATES
