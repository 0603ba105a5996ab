"""Plain data the store takes and returns. No SQLAlchemy, no protobuf objects cross this line
on the way out, so routes, alerts and the live feed depend only on these."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class Tier(StrEnum):
    RAW = "raw"
    MINUTE = "1m"
    HOUR = "1h"


class Agg(StrEnum):
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each tier is kept, in seconds."""

    raw: int = 7 * 86400
    minute: int = 30 * 86400
    hour: int = 365 * 86400


@dataclass(slots=True)
class HostRecord:
    host_id: str
    hostname: str
    os: str = ""
    kernel: str = ""
    arch: str = ""
    cpu_model: str = ""
    boot_time: float = 0.0
    logical_cores: int = 0
    memory_bytes: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    interval_seconds: float = 5.0
    agent_version: str = ""
    unsupported: list[str] = field(default_factory=list)
    first_seen_ms: int = 0
    last_seen_ms: int = 0  # wall clock of the newest sample stored for this host


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    series_id: int
    host_id: str
    metric: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LatestValue:
    metric: str
    labels: tuple[tuple[str, str], ...]
    ts_ms: int
    value: float


@dataclass(slots=True)
class Point:
    """One point of a history. For raw data min = max = value and count = 1.

    Not frozen: a history builds thousands of these and a frozen dataclass is 4x slower to
    construct."""

    ts_ms: int
    value: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class PointArrays:
    """The points of one history as columns (what the embedded store computes): the API
    encodes these straight to JSON; ``Point`` objects are built only when asked for (a 24 h
    history is 1,440 of them, and building them cost more than reading the blocks)."""

    ts_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    min: npt.NDArray[np.float64]
    max: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.ts_ms)

    def points(self) -> list[Point]:
        cols = (self.ts_ms, self.value, self.min, self.max, self.count)
        return [Point(*p) for p in zip(*(c.tolist() for c in cols), strict=True)]


class SeriesPoints:
    """One series of a history: its points as ``Point`` objects, or as ``PointArrays`` (then
    ``points`` is built from them on first use). Never changed once made: the SQLite store
    gives the same object to the reads that repeat one while nothing changed (its answer
    memo), and the API keeps its JSON by the object (weak references)."""

    __slots__ = ("__weakref__", "_points", "arrays", "labels", "metric")

    def __init__(
        self,
        metric: str,
        labels: tuple[tuple[str, str], ...],
        points: list[Point] | None = None,
        arrays: PointArrays | None = None,
    ) -> None:
        self.metric = metric
        self.labels = labels
        self._points = points
        self.arrays = arrays

    @property
    def points(self) -> list[Point]:
        if self._points is None:
            self._points = self.arrays.points() if self.arrays is not None else []
        return self._points

    def __repr__(self) -> str:
        return f"SeriesPoints({self.metric!r}, {self.labels!r}, {self.points!r})"


@dataclass(slots=True)
class RangeResult:
    tier: Tier
    step_ms: int
    series: list[SeriesPoints]
    next_cursor: str | None = None
    stable: StablePoints | None = None
    """Which leading points every read of the same series, step and aggregation gives again
    while the stored blocks stay as they are (what the API may keep encoded)."""


@dataclass(frozen=True, slots=True)
class StablePoints:
    """The points of a history whose bucket ends at or before ``until`` (``ts_ms + step``)
    come from stored blocks alone: every read with the same ``keys[i]`` for series ``i``
    gives them again, the same numbers; except a point before ``whole``: the first bucket
    of a range that starts inside it, whose numbers are those of its rows from the start on."""

    keys: list[Hashable]
    until: int
    step_ms: int
    whole: int


@dataclass(frozen=True, slots=True)
class ProcessRow:
    pid: int
    name: str
    user: str
    cpu_percent: float
    mem_percent: float
    rss_bytes: int
    threads: int
    status: str
    cmdline: str


@dataclass(slots=True)
class ProcessSnapshot:
    ts_ms: int
    top_cpu: list[ProcessRow]
    top_memory: list[ProcessRow]


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int  # samples newly stored
    duplicates: int  # samples already present for (series, timestamp): not stored again


@dataclass(frozen=True, slots=True)
class StoreStats:
    hosts: int
    series: int
    raw_samples: int
    minute_points: int
    hour_points: int
    bytes_on_disk: int
