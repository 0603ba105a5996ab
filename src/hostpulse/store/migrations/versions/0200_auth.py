"""Auth: users, refresh tokens, agent keys and enrollment tokens.

Mirrors ``hostpulse.server.auth.models``; tests/server/auth/test_auth_migration.py checks that
they agree.

Revision ID: 0200_auth
Revises: 0100_alerts
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200_auth"
down_revision: str | None = "0100_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "auth_refresh_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger()),
    )
    op.create_index("ix_auth_refresh_tokens_username", "auth_refresh_tokens", ["username"])
    op.create_table(
        "auth_agent_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("host_id", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger()),
        sa.Column("revoked_ms", sa.BigInteger()),
    )
    op.create_index("ix_auth_agent_keys_host_id", "auth_agent_keys", ["host_id"])
    op.create_table(
        "auth_enrollment_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("host_id", sa.String(200)),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("single_use", sa.Boolean(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "auth_enrollment_tokens",
        "auth_agent_keys",
        "auth_refresh_tokens",
        "auth_users",
    ):
        op.drop_table(name)
