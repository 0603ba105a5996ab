"""The SQLAlchemy engine: SQLite pragmas on every connection and Alembic upgrades."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

#: Applied on every new connection. busy_timeout comes first: a new connection waits for the
#: writer from its first statement on. synchronous=NORMAL is enough: the store's own write-ahead
#: log is fsynced before an ingest is acknowledged.
PRAGMAS: tuple[str, ...] = (
    "PRAGMA busy_timeout=10000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-65536",
)
#: Only takes effect on a new, empty file (before the first table), so it is set only while the
#: file does not have it: setting it takes the write lock even when nothing changes, and a
#: connection opened while a long write ran (an agent-key lookup during the first contact of
#: 1,000 hosts) failed with "database is locked" and the request with a 500.
AUTO_VACUUM = "PRAGMA auto_vacuum=INCREMENTAL"
_INCREMENTAL = 2


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(PRAGMAS[0])
        cursor.execute("PRAGMA auto_vacuum")
        if cursor.fetchone()[0] != _INCREMENTAL:
            cursor.execute(AUTO_VACUUM)
        for pragma in PRAGMAS[1:]:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` with the pragmas installed (SQLite only)."""
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_connect)
    return engine


def alembic_config(url: str, stdout: TextIO | None = None) -> Config:
    cfg = Config(stdout=stdout or sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (``head`` by default) on ``engine``."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, cfg, revision)
    logger.info("database schema at %s", revision)
