"""Alembic environment: async, batch mode for SQLite. Runs on a connection handed in by
``hostpulse.store.db.upgrade`` or, from the ``alembic``/``hostpulse db`` command line, on a new
async engine for ``sqlalchemy.url``."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection

from hostpulse.store.schema import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # the alembic command


def _url() -> str:
    """``sqlalchemy.url`` when set (``hostpulse db``, the store), else the store the server
    uses by default: $HOSTPULSE_DATABASE_URL, or $HOSTPULSE_DATA_DIR/store."""
    from hostpulse.store import database_url, resolve

    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    data_dir = os.environ.get("HOSTPULSE_DATA_DIR") or str(Path(base) / "hostpulse")
    location = os.environ.get("HOSTPULSE_DATABASE_URL") or str(Path(data_dir) / "store")
    resolve(location)[0].parent.mkdir(parents=True, exist_ok=True)
    return database_url(location)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    from hostpulse.store.db import make_engine

    engine = make_engine(_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(
        url=_url(),
        target_metadata=metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
