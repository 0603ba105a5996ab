"""All reads and writes of the dashboards table. Nothing else in the package issues SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.server.dashboards import models as m

_t = m.dashboards


@dataclass(frozen=True, slots=True)
class BoardRow:
    id: str
    owner: str
    name: str
    sharing: str
    spec: dict[str, Any]
    version: int
    created_ms: int
    updated_ms: int


class _OverLimit(Exception):
    """Inside ``insert``: the owner has the most boards allowed."""


class DashboardRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_tables(self) -> None:
        """For tests and tools; the server uses the Alembic migrations."""
        async with self.engine.begin() as conn:
            await conn.run_sync(m.metadata.create_all)

    async def get(self, board_id: str) -> BoardRow | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(_t).where(_t.c.id == board_id))).first()
        return None if r is None else BoardRow(*r)

    async def visible_to(self, username: str | None) -> list[BoardRow]:
        """Boards owned by ``username`` or shared (None: every board), by name."""
        stmt = select(_t).order_by(func.lower(_t.c.name), _t.c.id)
        if username is not None:
            stmt = stmt.where(or_(_t.c.owner == username, _t.c.sharing != "private"))
        async with self.engine.connect() as conn:
            return [BoardRow(*r) for r in await conn.execute(stmt)]

    async def insert(self, row: BoardRow, max_per_owner: int) -> bool:
        """False when the owner has ``max_per_owner`` boards already (counted in the write
        transaction; on SQLite the database lock makes it exact, on PostgreSQL two concurrent
        creates may both pass, which over-runs the bound by at most one per request in flight)."""
        try:
            async with self.engine.begin() as conn:
                owned = await conn.scalar(
                    select(func.count()).select_from(_t).where(_t.c.owner == row.owner)
                )
                if int(owned or 0) >= max_per_owner:
                    raise _OverLimit
                await conn.execute(
                    insert(_t).values(
                        id=row.id,
                        owner=row.owner,
                        name=row.name,
                        sharing=row.sharing,
                        spec=row.spec,
                        version=row.version,
                        created_ms=row.created_ms,
                        updated_ms=row.updated_ms,
                    )
                )
        except _OverLimit:
            return False
        return True

    async def update(
        self,
        board_id: str,
        *,
        expected_version: int | None,
        name: str,
        sharing: str,
        spec: dict[str, Any],
        now_ms: int,
    ) -> BoardRow | None:
        """Save over the board; None when it is gone or (with ``expected_version``) someone
        saved since that version. The version check and the write are one statement."""
        stmt = update(_t).where(_t.c.id == board_id)
        if expected_version is not None:
            stmt = stmt.where(_t.c.version == expected_version)
        async with self.engine.begin() as conn:
            res = await conn.execute(
                stmt.values(
                    name=name,
                    sharing=sharing,
                    spec=spec,
                    version=_t.c.version + 1,
                    updated_ms=now_ms,
                )
            )
            if not res.rowcount:
                return None
            r = (await conn.execute(select(_t).where(_t.c.id == board_id))).one()
        return BoardRow(*r)

    async def delete(self, board_id: str) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(_t).where(_t.c.id == board_id))
        return bool(res.rowcount)
