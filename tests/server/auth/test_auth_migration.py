"""The Alembic revision 0200_auth creates exactly the tables hostpulse.server.auth.models
declares, chained after the alerts revision, and downgrades cleanly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, inspect

import hostpulse
from hostpulse.server.auth import models

REVISION = Path(hostpulse.__file__).parent / "store/migrations/versions/0200_auth.py"


def _revision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rev_0200_auth", REVISION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_matches_models_and_downgrades_cleanly(tmp_path: Path) -> None:
    rev = _revision()
    assert (rev.revision, rev.down_revision) == ("0200_auth", "0100_alerts")
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with engine.begin() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            with Operations.context(ctx):
                rev.upgrade()
            assert compare_metadata(ctx, models.metadata) == []
            with Operations.context(ctx):
                rev.downgrade()
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()
