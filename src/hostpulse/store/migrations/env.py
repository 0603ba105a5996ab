"""Alembic environment: async, batch mode for SQLite. Runs on a connection handed in by
``hostpulse.store.db.upgrade`` or, from the ``alembic``/``hostpulse db`` command line, on a new
async engine for ``sqlalchemy.url``."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from hostpulse.store.schema import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # the alembic command


def _url() -> str:
    """``sqlalchemy.url`` when set (``hostpulse db``, the store), else the relational database
    the server's settings name ($HOSTPULSE_DATABASE_URL, $HOSTPULSE_DATA_DIR: the bare
    ``alembic`` command run from the repository root)."""
    from hostpulse.server.config import ServerSettings
    from hostpulse.store import resolve

    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    settings = ServerSettings()
    if not settings.on_postgres:
        resolve(settings.store_url)[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings.relational_url


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
