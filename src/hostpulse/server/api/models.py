"""Response models of the HTTP API (what the OpenAPI document shows)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from hostpulse.store.types import Agg, Tier


class HostStatus(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


class IngestAccepted(BaseModel):
    accepted_samples: int = Field(description="Samples newly stored.")
    duplicate_samples: int = Field(description="Samples already stored: not stored again.")


class Problem(BaseModel):
    detail: str = Field(description="Why the request was refused.")


class HostOut(BaseModel):
    host_id: str
    hostname: str
    status: HostStatus
    last_seen_ms: int = Field(description="Timestamp of the newest sample (ms since epoch).")
    first_seen_ms: int
    interval_seconds: float
    os: str
    kernel: str
    arch: str
    cpu_model: str
    boot_time: float
    logical_cores: int
    memory_bytes: int
    labels: dict[str, str]
    agent_version: str
    unsupported: list[str] = Field(description="Catalog keys this host cannot provide.")
    online_within_seconds: float = Field(
        description="The server's rule for `status`: online while last seen within this many "
        "seconds (online_factor x interval)."
    )
    stale_within_seconds: float = Field(
        description="Stale (not yet offline) while last seen within this many seconds "
        "(stale_factor x interval); offline after."
    )


class Value(BaseModel):
    metric: str
    labels: dict[str, str]
    ts_ms: int
    value: float


class CurrentSnapshot(BaseModel):
    host: HostOut
    values: list[Value]


MAX_BATCH_HOSTS = 64
"""Hosts one ``POST /current`` may ask for; more is refused (422)."""


class CurrentBatchIn(BaseModel):
    hosts: list[str] = Field(min_length=1, max_length=MAX_BATCH_HOSTS)
    metrics: list[str] | None = Field(
        default=None, max_length=64, description="Only these catalog keys (default: all)."
    )


class CurrentItemError(BaseModel):
    host_id: str
    status: int = Field(description="What the one-host route would have answered: 404.")
    error: str


class CurrentBatch(BaseModel):
    results: list[CurrentSnapshot | CurrentItemError] = Field(
        description="One per requested host, in the order asked."
    )


class SeriesOut(BaseModel):
    metric: str
    labels: dict[str, str]


class PointOut(BaseModel):
    ts_ms: int
    value: float
    min: float
    max: float
    count: int


class SeriesHistory(BaseModel):
    metric: str
    labels: dict[str, str]
    points: list[PointOut]


class History(BaseModel):
    host_id: str
    metric: str
    start_ms: int
    end_ms: int
    agg: Agg
    tier: Tier = Field(description="The tier the points come from: raw, 1m or 1h.")
    step_ms: int
    series: list[SeriesHistory]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


MAX_BATCH_SERIES = 64
"""Series one ``POST /history`` may ask for; more is refused (422)."""


class HistorySeriesIn(BaseModel):
    host_id: str
    metric: str = Field(description="A catalog key or `custom:<name>`.")
    labels: dict[str, str] = Field(default_factory=dict, description="Label filter.")


class HistoryBatchIn(BaseModel):
    start: int | str | None = Field(default=None, description="Default: 1 hour before end.")
    end: int | str | None = Field(default=None, description="Default: now.")
    step: str | None = Field(default=None, description="Point spacing, e.g. 60s or 5m.")
    agg: Agg = Agg.AVG
    tier: Tier | None = None
    limit: int = Field(default=10_000, ge=1, le=100_000, description="Points per series.")
    series: list[HistorySeriesIn] = Field(min_length=1, max_length=MAX_BATCH_SERIES)
    columns: list[Literal["value", "min", "max", "count"]] | None = Field(
        default=None,
        max_length=4,
        description=(
            "Answer each series as columns: `ts_ms` and these of `value`, `min`, `max`, `count`, "
            "each a list, instead of `points` objects (a chart needs only `value`: a 24 h "
            "board's answer is a fifth of the size and far quicker to parse)."
        ),
    )


class SeriesColumns(BaseModel):
    metric: str
    labels: dict[str, str]
    ts_ms: list[int]
    value: list[float] | None = None
    min: list[float] | None = None
    max: list[float] | None = None
    count: list[int] | None = None


class HistoryColumns(BaseModel):
    """A ``History`` whose series are columns (``POST /history`` with ``columns``)."""

    host_id: str
    metric: str
    start_ms: int
    end_ms: int
    agg: Agg
    tier: Tier
    step_ms: int
    series: list[SeriesColumns]
    next_cursor: str | None = None


class HistoryItemError(BaseModel):
    host_id: str
    metric: str
    status: int = Field(description="What the one-series route would have answered: 404, 422.")
    error: str


class HistoryBatch(BaseModel):
    results: list[History | HistoryColumns | HistoryItemError] = Field(
        description="One per requested series, in the order asked."
    )


class AreaRow(BaseModel):
    labels: dict[str, str]
    values: dict[str, float] = Field(description="Catalog key -> newest value.")


class AreaGroup(BaseModel):
    by: list[str] = Field(description="The label names the rows are keyed by.")
    rows: list[AreaRow]


class ProcessOut(BaseModel):
    pid: int
    name: str
    user: str
    cpu_percent: float
    mem_percent: float
    rss_bytes: int
    threads: int
    status: str
    cmdline: str


class ProcessesOut(BaseModel):
    host_id: str
    ts_ms: int
    top_cpu: list[ProcessOut]
    top_memory: list[ProcessOut]


class AreaSnapshot(BaseModel):
    host_id: str
    area: str
    ts_ms: int | None = Field(description="Newest timestamp among the values (null: no data).")
    values: dict[str, float] = Field(description="Unlabelled metrics: catalog key -> value.")
    groups: list[AreaGroup] = Field(description="Labelled metrics, grouped by label names.")
    processes: ProcessesOut | None = Field(
        default=None, description="Top processes (the processes area only)."
    )


class ProcessHistory(BaseModel):
    host_id: str
    start_ms: int
    end_ms: int
    snapshots: list[ProcessesOut]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    detail: str = ""


class CatalogMetric(BaseModel):
    key: str
    prom_name: str
    subsystem: str
    unit: str
    kind: str
    help: str
    labels: list[str]
    rate_of: str | None
