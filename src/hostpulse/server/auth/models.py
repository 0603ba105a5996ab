"""The auth tables (SQLAlchemy Core), in the store's database. Schema changes go through the
Alembic revision ``store/migrations/versions/0200_auth.py``, which mirrors this module.

Secrets are never stored in clear: passwords as argon2 hashes, refresh tokens, agent keys and
enrollment tokens as SHA-256 digests (they are 256-bit random values, so a fast hash is enough
and lets a request find its row with one index lookup)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table

metadata = MetaData()

users = Table(
    "auth_users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    Index("ix_auth_refresh_tokens_username", "username"),
)

agent_keys = Table(
    "auth_agent_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("host_id", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_used_ms", BigInteger),
    Column("revoked_ms", BigInteger),
    Index("ix_auth_agent_keys_host_id", "host_id"),
)

enrollment_tokens = Table(
    "auth_enrollment_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("host_id", String(200)),
    Column("expires_ms", BigInteger, nullable=False),
    Column("single_use", Boolean, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("max_hosts", Integer),  # enrollments it allows; NULL: the server's setting
)
