"""Compressed sample blocks (raw, 1-minute, 1-hour) and top-process history.

Revision ID: 0002_blocks
Revises: 0001_metadata
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_blocks"
down_revision: str | None = "0001_metadata"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ts_blocks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "host_key",
            sa.Integer(),
            sa.ForeignKey("ts_hosts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("group_ms", sa.Integer(), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_ts_blocks_host_kind_group", "ts_blocks", ["host_key", "kind", "group_ms"])
    op.create_index("ix_ts_blocks_kind_end", "ts_blocks", ["kind", "end_ms"])


def downgrade() -> None:
    op.drop_index("ix_ts_blocks_kind_end", table_name="ts_blocks")
    op.drop_index("ix_ts_blocks_host_kind_group", table_name="ts_blocks")
    op.drop_table("ts_blocks")
