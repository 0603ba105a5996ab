"""The one Alembic history, whole, on SQLite and on PostgreSQL: upgrade to head gives exactly
the tables the code declares (store, alerts, auth, dashboards), downgrade to base removes them
all, and upgrading again works (a downgraded database is usable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, text
from typer.testing import CliRunner

from hostpulse.alerts import models as alert_models
from hostpulse.cli.main import app
from hostpulse.server.auth import models as auth_models
from hostpulse.server.dashboards import models as dashboard_models
from hostpulse.store import schema
from hostpulse.store.db import Database, downgrade, upgrade
from hostpulse.store.tsdb import schema as tsdb_schema

pytestmark = pytest.mark.anyio


def _declared() -> MetaData:
    every = MetaData()
    for metadata in (
        schema.metadata,
        alert_models.metadata,
        auth_models.metadata,
        tsdb_schema.metadata,
        dashboard_models.metadata,
    ):
        for table in metadata.tables.values():
            table.to_metadata(every)
    return every


def _differences(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, _declared()))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    declared = set(_declared().tables)
    database = Database(database_url)
    try:
        await database.open()
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(_tables) == declared | {"alembic_version"}
            await conn.execute(text("INSERT INTO auth_users VALUES ('kept', 'h', 'admin', 1, 1)"))
            await conn.commit()
        await downgrade(database.engine, "base")
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
        await upgrade(database.engine)
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == declared | {"alembic_version"}
            assert (await conn.execute(text("SELECT count(*) FROM auth_users"))).scalar() == 0
    finally:
        await database.close()


async def test_upgrade_step_by_step_keeps_the_rows(database_url: str) -> None:
    """Each revision applied on its own, with rows written in between, as a server upgraded
    release by release would see it."""
    database = Database(database_url)
    try:
        await upgrade(database.engine, "0001_metadata")
        async with database.engine.begin() as conn:
            await conn.execute(text("INSERT INTO ts_hosts (id, host_id) VALUES (7, 'old')"))
        for revision in ("0002_blocks", "0100_alerts", "0200_auth", "0300_dashboards"):
            await upgrade(database.engine, revision)
        async with database.engine.begin() as conn:  # a token made before 0310_token_hosts
            await conn.execute(
                text(
                    "INSERT INTO auth_enrollment_tokens (token_hash, expires_ms, single_use, "
                    "uses, created_ms) VALUES ('x', 1, false, 3, 1)"
                )
            )
        await upgrade(database.engine, "0310_token_hosts")
        async with database.engine.connect() as conn:
            found = await conn.execute(text("SELECT uses, max_hosts FROM auth_enrollment_tokens"))
            assert found.all() == [(3, None)]  # kept; the server's setting applies to it
        await upgrade(database.engine, "0400_tsdb")
        async with database.engine.connect() as conn:
            assert (await conn.execute(text("SELECT host_id FROM ts_hosts"))).all() == [("old",)]
        await downgrade(database.engine, "0002_blocks")
        async with database.engine.connect() as conn:
            assert not {"auth_users", "alert_rules", "dashboards"} & await conn.run_sync(_tables)
            assert (await conn.execute(text("SELECT host_id FROM ts_hosts"))).all() == [("old",)]
    finally:
        await database.close()


def test_db_command_upgrades_every_database_the_server_opens(
    tmp_path: Path, server_db: dict[str, str]
) -> None:
    """``hostpulse db`` with the server's flags: on PostgreSQL it upgrades the relational
    database and the store's own file, and ``current`` names both."""
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    if server_db:
        args += ["--database-url", server_db["database_url"]]
    res = runner.invoke(app, ["db", "upgrade", "0100_alerts", *args])
    assert res.exit_code == 0, res.output
    assert res.output.count("upgraded ") == (2 if server_db else 1)
    res = runner.invoke(app, ["db", "current", *args])
    assert res.exit_code == 0 and res.output.count("0100_alerts") == (2 if server_db else 1)
    res = runner.invoke(app, ["db", "upgrade", *args])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["db", "current", *args])
    assert res.output.count("0400_tsdb (head)") == (2 if server_db else 1), res.output
    if server_db:
        assert "postgresql" in res.output and str(tmp_path / "store") in res.output
        assert (tmp_path / "store" / "hostpulse.db").is_file()
