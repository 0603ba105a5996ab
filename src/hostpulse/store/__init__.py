"""The storage engine behind the ``Store`` interface (``base.py``); ``open_store`` makes one."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostpulse.store.types import Retention

if TYPE_CHECKING:
    from hostpulse.store.base import Store
    from hostpulse.store.budget import HeadBudget
    from hostpulse.store.db import Database
    from hostpulse.store.engine import SQLiteStore
    from hostpulse.store.state import Clock

_LAZY = {
    "Store": "hostpulse.store.base",
    "HeadBudget": "hostpulse.store.budget",
    "Database": "hostpulse.store.db",
    "SQLiteStore": "hostpulse.store.engine",
    "Clock": "hostpulse.store.state",
    "wall_clock_ms": "hostpulse.store.state",
}
"""Names imported on first use: the engine pulls in SQLAlchemy and Alembic, which the ingest
acceptor and worker processes (they import ``store.prepare``) never need."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_RETENTION = Retention()
DB_FILE = "hostpulse.db"
WAL_DIR = "hostpulse.wal"
_SQLITE_PREFIXES = ("sqlite+aiosqlite:///", "sqlite:///")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def resolve(url_or_path: str | Path) -> tuple[Path, Path]:
    """``(database file, WAL directory)`` for a data directory or a SQLite URL."""
    text = str(url_or_path)
    for prefix in _SQLITE_PREFIXES:
        if text.startswith(prefix):
            db_path = Path(text[len(prefix) :])
            return db_path, db_path.with_name(db_path.name + ".wal")
    if "://" in text:
        raise ValueError(
            f"unsupported store url {text.split('://', 1)[0]!r}: the embedded store is a SQLite "
            "file or a directory (postgresql:// holds the relational state only)"
        )
    directory = Path(text)
    return directory / DB_FILE, directory / WAL_DIR


def database_url(url_or_path: str | Path) -> str:
    """The SQLAlchemy URL of the database behind a store location: other features (alerts,
    users) keep their tables in the same database."""
    return sqlite_url(resolve(url_or_path)[0])


def open_store(
    url_or_path: str | Path,
    *,
    retention: Retention = DEFAULT_RETENTION,
    clock: Clock | None = None,
    block_ms: int = 600_000,
    grace_ms: int = 60_000,
    process_interval_ms: int = 30_000,
    database: Database | None = None,
    head_budget: HeadBudget | None = None,
) -> SQLiteStore:
    """A store for a data directory (``hostpulse.db`` and the ``hostpulse.wal/`` log are
    created in it) or a ``sqlite+aiosqlite:///path/file.db`` URL (the log goes beside the
    file as ``file.db.wal/``). Call ``await store.start()`` before use.

    ``database``: the process's open ``Database`` on that same file, shared with the other
    repositories (the server passes it); without it the store opens and closes its own.
    ``head_budget``: bytes the in-memory head may hold per host and in total (``budget.py``)."""
    from hostpulse.store.db import Database
    from hostpulse.store.engine import SQLiteStore
    from hostpulse.store.state import wall_clock_ms

    db_path, wal_dir = resolve(url_or_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    owned = database is None
    if database is None:
        database = Database(sqlite_url(db_path))
    elif database.dialect != "sqlite":
        raise ValueError("the embedded store keeps its samples in SQLite, not in PostgreSQL")
    return SQLiteStore(
        database,
        wal_dir,
        owns_database=owned,
        retention=retention,
        clock=clock or wall_clock_ms,
        block_ms=block_ms,
        grace_ms=grace_ms,
        process_interval_ms=process_interval_ms,
        head_budget=head_budget,
    )


__all__ = [
    "Database",
    "HeadBudget",
    "Retention",
    "SQLiteStore",
    "Store",
    "database_url",
    "open_store",
    "resolve",
    "sqlite_url",
]


def _conforms(store: SQLiteStore) -> Store:
    """Type check only: the SQLite store implements the ``Store`` Protocol."""
    return store
