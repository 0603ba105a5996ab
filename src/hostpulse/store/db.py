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

#: Applied on every new connection. auto_vacuum only takes effect on a new, empty file (before
#: the first table), which is why it comes first. synchronous=NORMAL is enough: the store's
#: own write-ahead log is fsynced before an ingest is acknowledged.
PRAGMAS: tuple[str, ...] = (
    "PRAGMA auto_vacuum=INCREMENTAL",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA cache_size=-65536",
)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
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
