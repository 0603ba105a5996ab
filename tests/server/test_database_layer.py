"""Issue 12 item 1: one owner of the relational database. A running server has one engine
(one connection pool) that the store (on SQLite), auth and alerts all use; with PostgreSQL
the relational state is there and only the store keeps a SQLite file of its own."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from hostpulse.server.testing import Clock, LiveServer
from hostpulse.store import SQLiteStore


def test_one_engine_is_shared_by_store_auth_and_alerts(
    tmp_path: Path, server_db: dict[str, str]
) -> None:
    with LiveServer(tmp_path / "d", Clock(), **server_db) as srv:
        store = srv.store
        assert isinstance(store, SQLiteStore)
        auth_engine = srv.app.state.auth.repo.engine
        alerts_engine = srv.app.state.alerts.repo.engine
        assert auth_engine is alerts_engine
        if server_db:  # PostgreSQL: users and alerts there, samples in the data directory
            assert auth_engine.dialect.name == "postgresql"
            assert store.engine is not auth_engine and store.engine.dialect.name == "sqlite"
            assert Path(store.engine.url.database or "").is_relative_to(tmp_path / "d")
        else:
            assert store.engine is auth_engine
        viewer = srv.headers("viewer")  # a user created through the API ...
        assert httpx.get(f"{srv.url}/api/v1/auth/me", headers=viewer).status_code == 200

        async def usernames() -> list[str]:
            async with auth_engine.connect() as conn:
                rows = await conn.execute(text("SELECT username FROM auth_users"))
                return sorted(r[0] for r in rows)

        assert srv.call(usernames()) == ["admin", "viewer"]  # ... is in that database
