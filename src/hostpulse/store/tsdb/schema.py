"""The relational tables of the TSDB backend (SQLAlchemy Core; created by the Alembic revision
``0400_tsdb``): the host and series registry and the kept process lists. The samples
themselves are in the TSDB. Every time is milliseconds since the epoch in a BigInteger, which
PostgreSQL needs (its Integer is 32 bits)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

hosts = Table(
    "tsdb_hosts",
    metadata,
    Column("host_id", String(255), primary_key=True),
    Column("hostname", String(255), nullable=False, server_default=""),
    Column("os", String(255), nullable=False, server_default=""),
    Column("kernel", String(255), nullable=False, server_default=""),
    Column("arch", String(64), nullable=False, server_default=""),
    Column("cpu_model", String(255), nullable=False, server_default=""),
    Column("boot_time", Float, nullable=False, server_default="0"),
    Column("logical_cores", Integer, nullable=False, server_default="0"),
    Column("memory_bytes", BigInteger, nullable=False, server_default="0"),
    Column("labels", Text, nullable=False, server_default="{}"),
    Column("interval_seconds", Float, nullable=False, server_default="5"),
    Column("agent_version", String(64), nullable=False, server_default=""),
    Column("unsupported", Text, nullable=False, server_default="[]"),
    Column("first_seen_ms", BigInteger, nullable=False, server_default="0"),
    Column("last_seen_ms", BigInteger, nullable=False, server_default="0"),
)

series = Table(
    "tsdb_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "host_id",
        String(255),
        ForeignKey("tsdb_hosts.host_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("metric", String(255), nullable=False),
    Column("labels", Text, nullable=False),
    UniqueConstraint("host_id", "metric", "labels", name="uq_tsdb_series_host_metric_labels"),
)

processes = Table(
    "tsdb_processes",
    metadata,
    Column(
        "host_id",
        String(255),
        ForeignKey("tsdb_hosts.host_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("ts_ms", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("host_id", "ts_ms", name="pk_tsdb_processes"),
)
