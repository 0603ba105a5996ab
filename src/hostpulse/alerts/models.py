"""The alerts tables (SQLAlchemy Core), in the store's database. Schema changes go through the
Alembic revision ``store/migrations/versions/0100_alerts.py``, which mirrors this module."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _spec_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", String(64), primary_key=True),
        Column("spec", JSON, nullable=False),
        Column("source", String(16), nullable=False, default="api"),
        Column("created_ms", BigInteger, nullable=False),
        Column("updated_ms", BigInteger, nullable=False),
    )


rules = _spec_table("alert_rules")
channels = _spec_table("alert_channels")
silences = _spec_table("alert_silences")

instances = Table(
    "alert_instances",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("rule_id", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", Integer),
    Column("value", Float),
    Column("pending_since_ms", BigInteger),
    Column("fired_at_ms", BigInteger),
    Column("resolved_at_ms", BigInteger),
    Column("notified", String(16)),
    Column("notified_severity", Integer),
    Column("notified_at_ms", BigInteger, nullable=False, default=0),
    Column("last_sent_ms", BigInteger, nullable=False, default=0),
    Column("acked_by", String(255)),
    Column("acked_at_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
)

history = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(16), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("severity", Integer),
    Column("value", Float),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_alert_history_at", "at_ms"),
    Index("ix_alert_history_host_at", "host", "at_ms"),
    Index("ix_alert_history_rule_at", "rule_id", "at_ms"),
)

notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel_id", String(64), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # queued, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_alert_notifications_status", "status"),
)

attempts = Table(
    "alert_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Integer),
    Column("channel_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_alert_attempts_notification", "notification_id"),
)

hosts = Table(
    "alert_hosts",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("labels", JSON, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("interval_ms", Integer, nullable=False),
    Column("last_ts_ms", BigInteger, nullable=False),
)

meta = Table(
    "alert_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
