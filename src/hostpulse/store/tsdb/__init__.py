"""The second ``Store``: samples in a Prometheus-compatible TSDB (VictoriaMetrics single-node
or cluster, Prometheus), written with remote write and read with the Prometheus query API; the
host and series registry and the process lists in the relational ``Database``. docs/tsdb.md
describes settings, URL shapes, de-duplication and resolution."""

from __future__ import annotations

from hostpulse.store.db import Database
from hostpulse.store.tsdb.endpoints import Endpoints, endpoints
from hostpulse.store.tsdb.store import Clock, TsdbStore, wall_clock_ms
from hostpulse.store.types import Retention


def open_tsdb_store(
    tsdb_url: str,
    database: Database,
    *,
    tsdb_query_url: str | None = None,
    owns_database: bool = False,
    retention: Retention | None = None,
    clock: Clock = wall_clock_ms,
    timeout_s: float = 10.0,
    process_interval_ms: int = 30_000,
) -> TsdbStore:
    """A store writing to ``tsdb_url`` and querying ``tsdb_query_url`` (default the same
    root), keeping its registry in ``database`` (opened by the caller unless
    ``owns_database``). Call ``await store.start()`` before use."""
    return TsdbStore(
        database,
        endpoints(tsdb_url, tsdb_query_url),
        owns_database=owns_database,
        retention=retention,
        clock=clock,
        timeout_s=timeout_s,
        process_interval_ms=process_interval_ms,
    )


__all__ = ["Endpoints", "TsdbStore", "endpoints", "open_tsdb_store"]


def _conforms(store: TsdbStore) -> object:
    """Type check only: the TSDB store implements the ``Store`` Protocol."""
    from hostpulse.store.base import Store

    checked: Store = store
    return checked
