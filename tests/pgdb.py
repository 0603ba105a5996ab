"""PostgreSQL for the relational tests (users, keys, tokens, alerts, migrations): each test
session creates its own database with a unique name on 127.0.0.1:5432 (user postgres, trust;
scripts/test.sh starts the server) and drops it at the end; a test that asks for it gets it
empty. ``database_url`` runs a test on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from hostpulse.store import sqlite_url

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
DIALECTS = ("sqlite", "postgresql")


async def _admin(sql: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=database, timeout=10
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this test session (pytest-xdist: per worker): its name."""
    name = f"hostpulse_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}) is needed by the relational "
            f"tests and cannot be used: {exc}. scripts/test.sh starts it."
        )
    try:
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def empty_pg(name: str) -> str:
    """Empty the session's database (every table gone) and return its URL."""
    asyncio.run(_admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", name))
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty relational database: a SQLite file in ``tmp_path``, then the session's
    PostgreSQL database (emptied)."""
    if request.param == "sqlite":
        (tmp_path / "relational").mkdir(exist_ok=True)
        return sqlite_url(tmp_path / "relational" / "hostpulse.db")
    return empty_pg(request.getfixturevalue("pg_database"))


@pytest.fixture(params=DIALECTS)
def server_db(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings of a server's relational database: none (the SQLite file in its data
    directory, the default), then ``database_url`` of the session's PostgreSQL database
    (emptied; the samples stay in the data directory)."""
    if request.param == "sqlite":
        return {}
    return {"database_url": empty_pg(request.getfixturevalue("pg_database"))}
