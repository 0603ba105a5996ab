"""Enrollment tokens: how many hosts one token may enroll (issue 13 item 9).

``max_hosts`` NULL (tokens made before this revision) means the server's
``enrollment_max_hosts`` setting.

Revision ID: 0310_token_hosts
Revises: 0200_auth
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0310_token_hosts"
down_revision: str | None = "0300_dashboards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_enrollment_tokens") as batch:
        batch.add_column(sa.Column("max_hosts", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("auth_enrollment_tokens") as batch:
        batch.drop_column("max_hosts")
