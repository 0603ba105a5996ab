"""One Alembic revision of store/migrations on its own: it creates exactly the tables a models
module declares, and its downgrade removes them again (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, MetaData, inspect

import hostpulse
from hostpulse.store.db import make_engine

VERSIONS = Path(hostpulse.__file__).parent / "store/migrations/versions"


def load_revision(name: str) -> ModuleType:
    """The revision module ``versions/<name>.py`` (they are not importable by name)."""
    spec = importlib.util.spec_from_file_location(f"rev_{name}", VERSIONS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(conn: Connection, revs: list[ModuleType], metadata: MetaData) -> None:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    with Operations.context(ctx):
        for rev in revs:
            rev.upgrade()
    assert compare_metadata(ctx, metadata) == []
    with Operations.context(ctx):
        for rev in reversed(revs):
            rev.downgrade()
    assert inspect(conn).get_table_names() == []


def check_revision(rev: ModuleType | list[ModuleType], metadata: MetaData, url: str) -> None:
    """Upgrade the empty database at ``url`` with ``rev`` alone (or a list of revisions, in
    order): no difference to ``metadata`` (types compared too); downgrade: no table left."""
    revs = rev if isinstance(rev, list) else [rev]

    async def main() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_check, revs, metadata)
        finally:
            await engine.dispose()

    asyncio.run(main())
