"""Table definitions (SQLAlchemy Core). Every table is created by an Alembic revision in
``migrations/versions``; this module only names them for queries. Names start with ``ts_``
so that other features (alerts, users) add their own prefixes beside them."""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


class Kind(IntEnum):
    """What a row of ``ts_blocks`` holds."""

    RAW = 0
    MINUTE = 1
    HOUR = 2
    PROCESSES = 3


hosts = Table(
    "ts_hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host_id", String(255), nullable=False, unique=True),
    Column("hostname", String(255), nullable=False, server_default=""),
    Column("os", String(255), nullable=False, server_default=""),
    Column("kernel", String(255), nullable=False, server_default=""),
    Column("arch", String(64), nullable=False, server_default=""),
    Column("cpu_model", String(255), nullable=False, server_default=""),
    Column("boot_time", Float, nullable=False, server_default="0"),
    Column("logical_cores", Integer, nullable=False, server_default="0"),
    Column("memory_bytes", Integer, nullable=False, server_default="0"),
    Column("labels", Text, nullable=False, server_default="{}"),
    Column("interval_seconds", Float, nullable=False, server_default="5"),
    Column("agent_version", String(64), nullable=False, server_default=""),
    Column("unsupported", Text, nullable=False, server_default="[]"),
    Column("first_seen_ms", Integer, nullable=False, server_default="0"),
    Column("last_seen_ms", Integer, nullable=False, server_default="0"),
)

series = Table(
    "ts_series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host_key", Integer, ForeignKey("ts_hosts.id", ondelete="CASCADE"), nullable=False),
    Column("metric", String(255), nullable=False),
    Column("labels", Text, nullable=False),
    UniqueConstraint("host_key", "metric", "labels", name="uq_ts_series_host_metric_labels"),
)

meta = Table(
    "ts_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

blocks = Table(
    "ts_blocks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host_key", Integer, ForeignKey("ts_hosts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Integer, nullable=False),
    Column("group_ms", Integer, nullable=False),
    Column("start_ms", Integer, nullable=False),
    Column("end_ms", Integer, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_ts_blocks_host_kind_group", "host_key", "kind", "group_ms"),
    Index("ix_ts_blocks_kind_end", "kind", "end_ms"),
)
