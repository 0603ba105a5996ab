"""What the ingest listener hands the alert engine: the samples of the watched series, found
by position when the snapshot lists its series in table order, else through the index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hostpulse.alerts.types import Sample
from hostpulse.protocol import Host, HostBatch, Label, SeriesDef
from hostpulse.server.alerting import batch_feed

WATCHED = frozenset({"cpu_busy_percent", "filesystem_usage_percent"})


class _Engine:
    """Routes each watched metric to itself, and records what it is handed."""

    watched_metrics = WATCHED

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, list[Sample]]] = []

    def routes(self, host: str, host_labels: dict[str, str], metric: str) -> Any:
        return ((metric, 0),)

    def observe_routed(
        self, host: str, host_labels: dict[str, str], ts_ms: int, samples: Sequence[Any]
    ) -> None:
        self.seen.append((host, ts_ms, [(r[0][0], labels, v) for r, labels, v in samples]))


class _Service:
    def __init__(self) -> None:
        self.engine = _Engine()


def _batch(index: list[int], values: list[float]) -> HostBatch:
    b = HostBatch(
        host=Host(host_id="h1", hostname="web-1"),
        series=[
            SeriesDef(metric="cpu_busy_percent"),
            SeriesDef(metric="memory_usage_percent"),
            SeriesDef(
                metric="filesystem_usage_percent", labels=[Label(name="mountpoint", value="/")]
            ),
            SeriesDef(
                metric="filesystem_usage_percent", labels=[Label(name="mountpoint", value="/var")]
            ),
        ],
    )
    b.snapshots.add(timestamp_ms=1_000, series_index=index, values=values)
    return b


def _samples(batch: HostBatch) -> list[Sample]:
    service = _Service()
    batch_feed(service)(batch, b"sig")  # type: ignore[arg-type]
    [(host, ts, samples)] = service.engine.seen
    assert (host, ts) == ("h1", 1_000)
    return sorted(samples)


ROOT = ("filesystem_usage_percent", (("mountpoint", "/"),), 81.0)
VAR = ("filesystem_usage_percent", (("mountpoint", "/var"),), 12.5)
CPU = ("cpu_busy_percent", (), 55.0)


def test_series_in_table_order() -> None:
    assert _samples(_batch([0, 1, 2, 3], [55.0, 40.0, 81.0, 12.5])) == sorted([CPU, ROOT, VAR])


def test_series_in_another_order_give_the_same_samples() -> None:
    batch = _batch([3, 0, 2, 1], [12.5, 55.0, 81.0, 40.0])
    assert _samples(batch) == sorted([CPU, ROOT, VAR])


def test_a_position_that_holds_another_series_is_not_taken_for_it() -> None:
    # slot 0 holds series 2 (/ at 81 %), slot 2 holds series 0 (CPU at 55 %)
    assert _samples(_batch([2, 1, 0], [81.0, 40.0, 55.0])) == sorted([CPU, ROOT])


def test_series_missing_from_the_snapshot_are_not_passed() -> None:
    assert _samples(_batch([0, 1], [55.0, 40.0])) == [CPU]
    assert _samples(_batch([1, 3], [40.0, 12.5])) == [VAR]
