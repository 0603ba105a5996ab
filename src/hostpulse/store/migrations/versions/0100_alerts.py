"""Alerts: rules, channels, silences, alert state, history, notifications and their attempts.

Mirrors ``hostpulse.alerts.models``; tests/alerts/test_alert_migration.py checks that they agree.

Revision ID: 0100_alerts
Revises: (the store's head, set at merge)
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100_alerts"
# alert tables follow the store's sample tables
down_revision: str | None = "0002_blocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _spec_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )


def upgrade() -> None:
    for name in ("alert_rules", "alert_channels", "alert_silences"):
        _spec_table(name)
    op.create_table(
        "alert_instances",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer()),
        sa.Column("value", sa.Float()),
        sa.Column("pending_since_ms", sa.BigInteger()),
        sa.Column("fired_at_ms", sa.BigInteger()),
        sa.Column("resolved_at_ms", sa.BigInteger()),
        sa.Column("notified", sa.String(16)),
        sa.Column("notified_severity", sa.Integer()),
        sa.Column("notified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_sent_ms", sa.BigInteger(), nullable=False),
        sa.Column("acked_by", sa.String(255)),
        sa.Column("acked_at_ms", sa.BigInteger()),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("severity", sa.Integer()),
        sa.Column("value", sa.Float()),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_history_at", "alert_history", ["at_ms"])
    op.create_index("ix_alert_history_host_at", "alert_history", ["host", "at_ms"])
    op.create_index("ix_alert_history_rule_at", "alert_history", ["rule_id", "at_ms"])
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_notifications_status", "alert_notifications", ["status"])
    op.create_table(
        "alert_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer()),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_alert_attempts_notification", "alert_attempts", ["notification_id"])
    op.create_table(
        "alert_hosts",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("interval_ms", sa.Integer(), nullable=False),
        sa.Column("last_ts_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "alert_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_alert_attempts_notification", "alert_attempts"),
        ("ix_alert_notifications_status", "alert_notifications"),
        ("ix_alert_history_rule_at", "alert_history"),
        ("ix_alert_history_host_at", "alert_history"),
        ("ix_alert_history_at", "alert_history"),
    ):
        op.drop_index(index, table_name=table)
    for name in (
        "alert_meta",
        "alert_hosts",
        "alert_attempts",
        "alert_notifications",
        "alert_history",
        "alert_instances",
        "alert_silences",
        "alert_channels",
        "alert_rules",
    ):
        op.drop_table(name)
