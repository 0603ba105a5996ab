"""The dashboards table (SQLAlchemy Core), in the store's relational database. Schema changes go
through the Alembic revision ``store/migrations/versions/0300_dashboards.py``, which mirrors this
module (tests/server/dashboards/test_dashboard_migration.py checks that they agree)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table

metadata = MetaData()

dashboards = Table(
    "dashboards",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    # private | view (every signed-in user reads it) | edit (editors may also change it)
    Column("sharing", String(8), nullable=False),
    Column("spec", JSON, nullable=False),
    # bumped by every save: a save based on an older version is refused (409), so two editors
    # of a shared board do not silently overwrite each other
    Column("version", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_dashboards_owner", "owner"),
)
