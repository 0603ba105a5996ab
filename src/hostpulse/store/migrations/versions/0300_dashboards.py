"""Dashboards: custom boards of widgets, with an owner and a sharing level.

Mirrors ``hostpulse.server.dashboards.models``; tests/server/dashboards/test_dashboard_migration.py
checks that they agree.

Revision ID: 0300_dashboards
Revises: 0200_auth
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0300_dashboards"
down_revision: str | None = "0200_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sharing", sa.String(8), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_dashboards_owner", "dashboards", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_dashboards_owner", table_name="dashboards")
    op.drop_table("dashboards")
