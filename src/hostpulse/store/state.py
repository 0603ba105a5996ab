"""The state of one embedded store, owned in one place.

``SQLiteStore`` (``engine.py``) is a facade over four parts that share this object: the
``Registrar`` (hosts and series), the ``HeadWriter`` (applies durable requests to the head), the
``Reader`` (queries) and the ``Compactor`` (head to blocks, merges, retention). Each part keeps
what only it uses (the registrar's job queue, the compactor's lock) to itself; what two parts
use lives here, declared once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.protocol import Snapshot
from hostpulse.store import db
from hostpulse.store.blockread import BlockVersions
from hostpulse.store.budget import HeadBudget
from hostpulse.store.exceptions import StoreClosedError
from hostpulse.store.head import HostHead, WindowBuf
from hostpulse.store.types import Retention
from hostpulse.store.wal import WriteAheadLog

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True, eq=False)
class StoreState:
    """Settings, open handles and the in-memory head of one store."""

    database: db.Database
    wal_dir: Path
    retention: Retention
    clock: Clock
    block_ms: int
    """Width of a head window and of a raw block, in ms (a whole number of minutes dividing an
    hour)."""
    grace_ms: int
    """How long after a window's end it stays in the head for late samples."""
    process_interval_ms: int
    """Process lists are kept at most once per this interval per host."""
    level: int
    """zstd level of the blocks."""
    owns_database: bool = False
    budget: HeadBudget = field(default_factory=HeadBudget)
    opened_engine: AsyncEngine | None = None
    opened_wal: WriteAheadLog | None = None
    heads: dict[str, HostHead] = field(default_factory=dict)
    """host id -> the host's head (its record, series columns, windows, latest values)."""
    by_key: dict[int, HostHead] = field(default_factory=dict)
    """The same heads by the host's database key."""
    watermark: int = 0
    """Windows starting before this are compacted (or being compacted)."""
    compacting: dict[tuple[int, int], WindowBuf] = field(default_factory=dict)
    """(host key, window) -> a window handed to the compactor, readable until it is stored."""
    compacting_procs: dict[int, list[Snapshot]] = field(default_factory=dict)
    touched_groups: dict[tuple[int, int, int], int] = field(default_factory=dict)
    """(host key, kind, group) -> blocks in that group, for groups that may need a merge."""
    head_bytes: int = 0
    """What all heads and the windows being compacted hold (``budget.py``)."""
    head_reserved: int = 0
    """What requests that passed the budget check but are not applied yet may still add."""
    compacting_bytes: int = 0
    """The part of ``head_bytes`` handed to the compactor."""
    block_versions: BlockVersions = field(default_factory=BlockVersions)
    """When the stored blocks of each host and tier last changed (noted by the compactor,
    checked by the reader's kept rows, ``blockread.py``)."""
    head_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the head is mutated and while the compactor takes windows out of it."""

    @property
    def engine(self) -> AsyncEngine:
        if self.opened_engine is None:
            raise StoreClosedError("store is not started")
        return self.opened_engine

    @property
    def wal(self) -> WriteAheadLog:
        if self.opened_wal is None:
            raise StoreClosedError("store is not started")
        return self.opened_wal
