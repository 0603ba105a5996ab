"""The per-snapshot checks read each snapshot's index and values once, as arrays, and skip
what they know already (an index run in table order has no repeat; a run equal to the previous
snapshot's was checked with it): every other snapshot of a batch is still checked whole, with
the same answers."""

from __future__ import annotations

import math

import pytest
from wire import batch, now_ms, request

from hostpulse.protocol import HostBatch
from hostpulse.server.ingest import IngestError, IngestLimits
from hostpulse.server.ingest.checker import Checker

CPU = ("cpu_busy_percent", ())
MEM = ("memory_usage_percent", ())
LOAD = ("cpu_load1", ())


def _three(t: int) -> HostBatch:
    row = {CPU: 1.0, MEM: 2.0, LOAD: 3.0}
    return batch("h1", [(t - 10_000, row), (t - 5000, dict(row)), (t, dict(row))])


def _check(b: HostBatch) -> int:
    checker = Checker(IngestLimits())
    checked = checker.check(request(b), now_ms())
    assert checked.arrays is not None
    return sum(len(i) for i, _ in checked.arrays[0])


def _refused(b: HostBatch) -> IngestError:
    with pytest.raises(IngestError) as info:
        Checker(IngestLimits()).check(request(b), now_ms())
    return info.value


def test_a_batch_in_table_order_is_accepted() -> None:
    assert _check(_three(now_ms())) == 9


@pytest.mark.parametrize("where", [0, 1, 2])
def test_a_repeated_series_is_found_in_any_snapshot(where: int) -> None:
    b = _three(now_ms())
    b.snapshots[where].series_index[:] = [0, 1, 1]
    err = _refused(b)
    assert (err.status, err.reason) == (
        422,
        f"host 'h1' snapshots[{where}]: a series appears twice in one snapshot",
    )


@pytest.mark.parametrize("where", [0, 1, 2])
def test_an_index_out_of_range_is_found_in_any_snapshot(where: int) -> None:
    b = _three(now_ms())
    b.snapshots[where].series_index[:] = [0, 1, 3]
    err = _refused(b)
    assert (err.status, err.reason) == (
        422,
        f"host 'h1' snapshots[{where}]: series_index 3 is out of range (3 series)",
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1]])
def test_a_value_that_is_not_finite_is_named(value: float, order: list[int]) -> None:
    b = _three(now_ms())
    for snap in b.snapshots:
        snap.series_index[:] = order
    b.snapshots[2].values[1] = value
    err = _refused(b)
    name = b.series[order[1]].metric
    assert (err.status, err.reason) == (
        422,
        f"host 'h1' snapshots[2]: value of {name} is {value} (must be finite)",
    )


def test_more_values_than_indexes_is_refused() -> None:
    b = _three(now_ms())
    b.snapshots[1].values.append(4.0)
    err = _refused(b)
    assert (err.status, err.reason) == (
        422,
        "host 'h1' snapshots[1]: 4 values but 3 series_index entries",
    )


def test_a_snapshot_with_fewer_series_than_the_table_is_accepted() -> None:
    b = _three(now_ms())
    b.snapshots[1].series_index[:] = [2]
    b.snapshots[1].values[:] = [7.0]
    assert _check(b) == 7
