"""Hosts, series and store metadata.

Revision ID: 0001_metadata
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_metadata"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ts_hosts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host_id", sa.String(255), nullable=False, unique=True),
        sa.Column("hostname", sa.String(255), nullable=False, server_default=""),
        sa.Column("os", sa.String(255), nullable=False, server_default=""),
        sa.Column("kernel", sa.String(255), nullable=False, server_default=""),
        sa.Column("arch", sa.String(64), nullable=False, server_default=""),
        sa.Column("cpu_model", sa.String(255), nullable=False, server_default=""),
        sa.Column("boot_time", sa.Float(), nullable=False, server_default="0"),
        sa.Column("logical_cores", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("memory_bytes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("labels", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("interval_seconds", sa.Float(), nullable=False, server_default="5"),
        sa.Column("agent_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("unsupported", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("first_seen_ms", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_seen_ms", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "ts_series",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "host_key",
            sa.Integer(),
            sa.ForeignKey("ts_hosts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.UniqueConstraint("host_key", "metric", "labels", name="uq_ts_series_host_metric_labels"),
    )
    op.create_table(
        "ts_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ts_meta")
    op.drop_table("ts_series")
    op.drop_table("ts_hosts")
