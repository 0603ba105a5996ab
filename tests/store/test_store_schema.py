"""SQLite pragmas, Alembic migrations and the `hostpulse db` command."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storekit import T0, batch, request
from typer.testing import CliRunner

from hostpulse.cli.main import app
from hostpulse.store import open_store, sqlite_url
from hostpulse.store.db import make_engine, upgrade

pytestmark = pytest.mark.anyio


async def test_pragmas_took_effect(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    await store.start()
    try:
        async with store.engine.connect() as conn:
            got = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "auto_vacuum")
            }
            timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    finally:
        await store.close()
    # synchronous 1 = NORMAL, auto_vacuum 2 = INCREMENTAL
    assert got == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "auto_vacuum": 2}
    assert timeout is not None and timeout >= 5000
    with sqlite3.connect(tmp_path / "hostpulse.db") as raw:  # persistent settings
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA auto_vacuum").fetchone() == (2,)


async def test_a_new_connection_opens_while_a_write_runs(tmp_path: Path) -> None:
    """Opening a connection takes no write lock: one opened while another connection is in a
    long write transaction (the store registering 1,000 new hosts while an agent key is looked
    up) reads at once instead of failing with "database is locked" (a 500 to the agent)."""
    store = open_store(tmp_path)
    await store.start()
    await store.close()
    writer = sqlite3.connect(tmp_path / "hostpulse.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the write lock, held until the end of the test
    engine = make_engine(sqlite_url(tmp_path / "hostpulse.db"))
    try:
        async with engine.connect() as conn:
            tables = (await conn.exec_driver_sql("SELECT count(*) FROM sqlite_master")).scalar()
            vacuum = (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar()
    finally:
        await engine.dispose()
        writer.execute("ROLLBACK")
        writer.close()
    assert tables and vacuum == 2


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {r[0] for r in rows}


def _head() -> str:
    from alembic.script import ScriptDirectory

    from hostpulse.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_the_migrations_form_one_chain() -> None:
    from alembic.script import ScriptDirectory

    from hostpulse.store.db import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


async def test_upgrade_head_on_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    engine = make_engine(sqlite_url(path))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    assert {"ts_hosts", "ts_series", "ts_meta", "ts_blocks"} <= _tables(path)
    assert _revision(path) == _head()


async def test_upgrade_from_the_previous_revision_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(sqlite_url(path))
    try:
        await upgrade(engine, "0001_metadata")
    finally:
        await engine.dispose()
    assert "ts_blocks" not in _tables(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO ts_hosts (id, host_id, hostname) VALUES (7, 'old', 'old.lan')")
        conn.execute(
            "INSERT INTO ts_series (id, host_key, metric, labels) "
            "VALUES (70, 7, 'cpu_busy_percent', '[]')"
        )
    store = open_store(f"sqlite+aiosqlite:///{path}")
    await store.start()  # upgrades to head
    try:
        host = await store.host("old")
        assert host is not None and host.hostname == "old.lan"
        (series,) = await store.series("old")
        assert (series.series_id, series.metric) == (70, "cpu_busy_percent")
        await store.ingest(request(batch("old", [(T0, [1, 2, 3, 4, 5])])), T0)
        assert {v.metric for v in await store.latest("old")} >= {"cpu_busy_percent"}
    finally:
        await store.close()
    assert _revision(path) == _head()


def test_db_command_upgrades_and_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    res = runner.invoke(app, ["db", "upgrade", "0001_metadata", *args])
    assert res.exit_code == 0, res.output
    db_file = tmp_path / "store" / "hostpulse.db"
    assert _revision(db_file) == "0001_metadata"
    res = runner.invoke(app, ["db", "upgrade", *args])
    assert res.exit_code == 0, res.output
    assert _revision(db_file) == _head()
    res = runner.invoke(app, ["db", "history"])
    assert res.exit_code == 0 and "0001_metadata -> 0002_blocks" in res.output


def test_the_alembic_command_upgrades_from_the_repository_root(tmp_path: Path) -> None:
    # `alembic upgrade head` as an operator types it (alembic.ini at the root of the checkout),
    # on an empty store and on one at the previous revision
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    alembic = [sys.executable, "-m", "alembic"]
    env = {**os.environ, "HOSTPULSE_DATA_DIR": str(tmp_path / "data")}
    env.pop("HOSTPULSE_DATABASE_URL", None)
    db = tmp_path / "data" / "store" / "hostpulse.db"
    previous = "0100_alerts"
    for target in (previous, "head"):
        r = subprocess.run(
            [*alembic, "upgrade", target], cwd=root, env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert _revision(db) == (previous if target == previous else _head())
    empty = {**env, "HOSTPULSE_DATA_DIR": str(tmp_path / "fresh")}
    r = subprocess.run([*alembic, "upgrade", "head"], cwd=root, env=empty, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert _revision(tmp_path / "fresh" / "store" / "hostpulse.db") == _head()
