"""The storage interface for samples. The server, alerts and tools talk to a ``Store``; the
embedded SQLite engine is its first implementation."""

from __future__ import annotations

from typing import Protocol

from hostpulse.protocol import IngestRequest
from hostpulse.store.types import (
    Agg,
    HostRecord,
    IngestResult,
    LatestValue,
    ProcessSnapshot,
    RangeResult,
    SeriesInfo,
    StoreStats,
    Tier,
)


class Store(Protocol):
    """Samples, hosts, series and process lists. Where the relational state (users, keys,
    alerts) lives is not the store's business: the process's ``db.Database`` holds it."""

    async def start(self) -> None:
        """Open (creating and migrating when needed) and recover anything not yet compacted."""

    async def close(self) -> None:
        """Flush what is in memory and release files. Safe to call twice."""

    async def ready(self) -> bool:
        """True when a read and a write would succeed now."""

    async def ingest(self, request: IngestRequest, received_ms: int) -> IngestResult:
        """Store an already-validated request. Returns only once the data is durable.

        Idempotent per (host, series, timestamp): samples already stored are counted as
        duplicates and not stored again. All-or-nothing per request.
        """

    async def hosts(self) -> list[HostRecord]: ...

    async def host(self, host_id: str) -> HostRecord | None: ...

    async def series(
        self, host_id: str, metric: str | None = None, labels: dict[str, str] | None = None
    ) -> list[SeriesInfo]: ...

    async def latest(self, host_id: str, metrics: list[str] | None = None) -> list[LatestValue]:
        """The newest value of every series of the host (or of the named metrics)."""

    async def query_range(
        self,
        host_id: str,
        metric: str,
        start_ms: int,
        end_ms: int,
        *,
        labels: dict[str, str] | None = None,
        step_ms: int | None = None,
        agg: Agg = Agg.AVG,
        tier: Tier | None = None,
        cursor: str | None = None,
        limit: int = 10_000,
    ) -> RangeResult:
        """History of one metric of one host. ``tier=None`` picks raw, 1-minute or 1-hour from
        the range and step; ``limit`` caps points per page and ``next_cursor`` continues."""

    async def processes(self, host_id: str, at_ms: int | None = None) -> ProcessSnapshot | None:
        """The top-process lists at (the newest at or before) ``at_ms``; the latest when None."""

    async def process_history(
        self, host_id: str, start_ms: int, end_ms: int
    ) -> list[ProcessSnapshot]: ...

    async def maintain(self, now_ms: int) -> None:
        """Compact, roll up and enforce retention. The background job calls this; tests call it
        with a fake clock."""

    async def stats(self) -> StoreStats: ...
