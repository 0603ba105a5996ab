"""The TSDB backend's relational tables: host and series registry, kept process lists.

Mirrors ``hostpulse.store.tsdb.schema``; tests/store/test_migration_history.py checks that
they agree. Times are BigInteger (milliseconds do not fit PostgreSQL's Integer).

Revision ID: 0400_tsdb
Revises: 0200_auth
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0400_tsdb"
down_revision: str | None = "0200_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tsdb_hosts",
        sa.Column("host_id", sa.String(255), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False, server_default=""),
        sa.Column("os", sa.String(255), nullable=False, server_default=""),
        sa.Column("kernel", sa.String(255), nullable=False, server_default=""),
        sa.Column("arch", sa.String(64), nullable=False, server_default=""),
        sa.Column("cpu_model", sa.String(255), nullable=False, server_default=""),
        sa.Column("boot_time", sa.Float(), nullable=False, server_default="0"),
        sa.Column("logical_cores", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("labels", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("interval_seconds", sa.Float(), nullable=False, server_default="5"),
        sa.Column("agent_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("unsupported", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "tsdb_series",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "host_id",
            sa.String(255),
            sa.ForeignKey("tsdb_hosts.host_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.UniqueConstraint(
            "host_id", "metric", "labels", name="uq_tsdb_series_host_metric_labels"
        ),
    )
    op.create_table(
        "tsdb_processes",
        sa.Column(
            "host_id",
            sa.String(255),
            sa.ForeignKey("tsdb_hosts.host_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "ts_ms", name="pk_tsdb_processes"),
    )


def downgrade() -> None:
    op.drop_table("tsdb_processes")
    op.drop_table("tsdb_series")
    op.drop_table("tsdb_hosts")
