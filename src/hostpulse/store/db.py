"""The relational database layer: one ``Database`` (one SQLAlchemy engine, one connection
pool) per process, opened once and handed to every repository (the embedded store's
registry, auth, alerts); the SQLite pragmas; the one Alembic history; and where the database
is by default.

SQLite is the default (the file inside the data directory). PostgreSQL is chosen with a
``postgresql://`` URL (driven through asyncpg); it then holds the relational state while the
embedded store keeps its samples in its own SQLite file (see docs/database.md).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

#: Applied on every new connection; none of them takes a lock, and busy_timeout comes first so
#: that whatever follows waits for a writer instead of failing with "database is locked".
#: synchronous=NORMAL is enough: the store's own write-ahead log is fsynced before an ingest
#: is acknowledged.
PRAGMAS: tuple[str, ...] = (
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-65536",
)
#: Persistent settings of the file, set once by ``Database.open`` (not per connection: they
#: need the database lock). auto_vacuum only takes effect on a new, empty file (before the
#: first table), which is why it comes before journal_mode and the migrations.
FILE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA auto_vacuum=INCREMENTAL",
    "PRAGMA journal_mode=WAL",
)

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/hostpulse`` or ``~/.local/share/hostpulse``: the one place that works
    out the default data directory (the server settings and ``hostpulse db`` use it)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hostpulse"


def is_postgres(url: str) -> bool:
    return url.split("://", 1)[0] in _POSTGRES_SCHEMES


def postgres_url(url: str) -> str:
    """``postgresql://`` (or ``postgres://``) as SQLAlchemy's asyncpg URL; ValueError naming
    the URL (without its password) when it is not a PostgreSQL URL with a database name."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _POSTGRES_SCHEMES:
        raise ValueError("not a postgresql:// URL")
    parsed = make_url(f"postgresql+asyncpg://{rest}")
    if not parsed.database:
        shown = parsed.render_as_string(hide_password=True)
        raise ValueError(f"{shown!r} names no database (postgresql://user@host:5432/dbname)")
    return parsed.render_as_string(hide_password=False)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` with the pragmas installed (SQLite) or connections checked
    before use (PostgreSQL: a restarted database server costs no request). Prefer one
    ``Database`` per process over calling this more than once."""
    if is_postgres(url):
        return create_async_engine(postgres_url(url), pool_pre_ping=True)
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_connect)
    return engine


class Database:
    """The process's relational database: one engine whose pool every repository shares.

    ``open`` sets the SQLite file's persistent pragmas and brings the schema to the head of
    the Alembic history; ``close`` releases the pool. Whoever opens it closes it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def shown_url(self) -> str:
        """The URL without its password (for logs and messages)."""
        return self.engine.url.render_as_string(hide_password=True)

    async def open(self, revision: str = "head") -> Database:
        if self.dialect == "sqlite":
            async with self.engine.connect() as conn:
                for pragma in FILE_PRAGMAS:
                    await conn.exec_driver_sql(pragma)
        await upgrade(self.engine, revision)
        return self

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def alembic_config(url: str, stdout: TextIO | None = None) -> Config:
    cfg = Config(stdout=stdout or sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # configparser interpolation: a '%' in a password must be doubled
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


MIGRATION_LOCK = 0x68705F6462  # "hp_db": the PostgreSQL advisory lock of schema changes


async def _migrate(
    engine: AsyncEngine, step: Callable[[Connection, Config, str], None], revision: str
) -> None:
    """Run an Alembic ``step`` on one connection. On PostgreSQL under an advisory lock: server
    replicas started together on an empty database would otherwise all create the same tables
    (tried: two of three crashed with a duplicate key in pg_type); the later ones wait, then
    find the schema at its head."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        await conn.run_sync(step, cfg, revision)
    logger.info("database schema at %s", revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (``head`` by default) on ``engine``."""
    await _migrate(engine, _upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base``: no table left) on ``engine``."""
    await _migrate(engine, _downgrade, revision)
