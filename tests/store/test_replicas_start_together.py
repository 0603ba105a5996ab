"""Server replicas started at the same moment on an empty PostgreSQL database (Compose starts
them so): the schema is created once while the others wait for it, and the first admin is
created once, with none of them failing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pgdb import empty_pg
from sqlalchemy import text

from hostpulse.server.auth.lifecycle import running_auth
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.store.db import Database

pytestmark = pytest.mark.anyio
REPLICAS = 3


@pytest.fixture
def empty_database(pg_database: str) -> str:
    return empty_pg(pg_database)


async def test_replicas_opening_an_empty_database_together(
    tmp_path: Path, empty_database: str
) -> None:
    databases = [Database(empty_database) for _ in range(REPLICAS)]

    async def start(i: int) -> None:
        database = databases[i]
        await database.open()
        data_dir = tmp_path / f"replica{i}"
        async with running_auth(
            AuthConfig(), database.engine, data_dir, admin_password="first-admin-pw-" + "x" * 8
        ):
            pass

    try:
        # bounded: without the migration lock the three schema transactions never finished
        await asyncio.wait_for(asyncio.gather(*(start(i) for i in range(REPLICAS))), 120)
        async with databases[0].engine.connect() as conn:
            users = (await conn.execute(text("SELECT username, role FROM auth_users"))).all()
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert users == [("admin", "admin")]
        assert len(version) == 1
    finally:
        for database in databases:
            await database.close()
