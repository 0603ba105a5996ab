"""Every bound of one ingest request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Every bound of one ingest request (docs/security.md, "Bounds on ingest and live")."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_json_bytes: int = 2 * 1024 * 1024
    max_future_ms: int = 300_000
    max_past_ms: int = 7 * 86_400_000
    max_series_per_host: int = 5000
    series_active_window_ms: int = 3_600_000
    """A series counts against max_series_per_host while it reported within this."""
    max_batches: int = 100
    max_series_defs: int = 20_000
    max_snapshots: int = 10_000
    max_samples: int = 1_000_000
    max_head_cells: int = 250_000
    max_processes: int = 100
    max_host_labels: int = 64
    max_hosts: int = 10_000
    max_pending: int = 256
    max_pending_bytes: int = 256 * 1024 * 1024
    overload_retry_after: int = 5
    head_full_retry_after: int = 60
    """Retry-After of a request over the store's head budget: the maintenance interval."""
