"""The one interface every collector implements, and what a collection returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

Labels = tuple[tuple[str, str], ...]
"""Label pairs in the catalog's label order, e.g. (("cpu", "0"), ("mode", "user"))."""


@dataclass(slots=True)
class Sample:
    """Treated as immutable. Not ``frozen``: a frozen dataclass sets each field through
    ``object.__setattr__``, which made creating one twice as slow, and a collection with 20
    containers and a textfile creates about 450 of them (bench/agent_profile.py)."""

    key: str  # a catalog key
    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    name: str
    user: str
    cpu_percent: float
    mem_percent: float
    rss_bytes: int
    threads: int
    status: str
    cmdline: str


@dataclass(frozen=True, slots=True)
class SystemInfo:
    hostname: str
    os: str
    kernel: str
    arch: str
    cpu_model: str
    boot_time: float


@dataclass(slots=True)
class Reading:
    """What one call of ``Collector.collect`` produced.

    ``unsupported`` names catalog keys this platform (or this machine) cannot provide: they are
    reported as such, never as zero. ``errors`` holds one line per problem that did not stop the
    collection (a vanished process, a permission denied on one mount).
    """

    samples: list[Sample] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    top_cpu: list[ProcessInfo] | None = None
    top_memory: list[ProcessInfo] | None = None
    system: SystemInfo | None = None


class Collector(Protocol):
    """A source of samples. ``name`` is the catalog's collector name.

    ``collect(now)`` takes a monotonic timestamp in seconds so that rates are computed from the
    time between two readings; it must not block waiting for an interval.
    """

    name: str

    def collect(self, now: float) -> Reading: ...
