"""The history bucket reader of the TSDB backend against answers as the Prometheus query API
gives them (the TSDB round trips are in test_tsdb_store.py and test_tsdb_parity.py): one
combined query where the TSDB takes it, one per aggregation where it refuses it (400/422),
buckets stamped ``b`` from answers evaluated at ``b + step``, and the page cursor."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hostpulse.store.tsdb.history import BucketReader, RefusedQueryError
from hostpulse.store.types import Agg, Point

pytestmark = pytest.mark.anyio

STEP = 60_000
T0 = 1_796_570_640_000  # a multiple of the step


def series(values: list[tuple[int, str]], **labels: str) -> dict[str, Any]:
    return {"metric": labels, "values": [[t / 1000, v] for t, v in values]}


class FakeTsdb:
    """Answers range queries like VictoriaMetrics (``combined``) or like Prometheus, from
    per-aggregation columns; records the queries."""

    def __init__(self, combined: bool, columns: dict[str, list[tuple[int, str]]]) -> None:
        self.combined = combined
        self.columns = columns
        self.queries: list[dict[str, str]] = []

    async def __call__(self, params: dict[str, str]) -> list[dict[str, Any]]:
        self.queries.append(params)
        query = params["query"]
        if query.startswith("aggr_over_time("):
            if not self.combined:
                raise RefusedQueryError("HTTP 400: unknown function aggr_over_time")
            return [
                series(col, rollup=f"{name}_over_time", mode="user")
                for name, col in self.columns.items()
            ]
        name = query.split("_over_time(")[0]
        return [series(self.columns[name], mode="user")]


def answer() -> dict[str, list[tuple[int, str]]]:
    """Two buckets, evaluated at b + step."""
    at = [T0 + STEP, T0 + 2 * STEP]
    return {
        "avg": list(zip(at, ["2.5", "NaN"], strict=True)),
        "min": list(zip(at, ["1", "4"], strict=True)),
        "max": list(zip(at, ["4", "+Inf"], strict=True)),
        "count": list(zip(at, ["4", "3"], strict=True)),
    }


@pytest.mark.parametrize("combined", [True, False])
async def test_buckets_from_one_query_or_one_per_aggregation(combined: bool) -> None:
    tsdb = FakeTsdb(combined, answer())
    reader = BucketReader(tsdb)
    for _ in range(2):
        tsdb.queries.clear()
        found, cursor = await reader.read(
            '{host_id="h"}', "cpu_usage_percent", T0 + 1, T0 + STEP + 5, STEP, Agg.AVG, 100
        )
        assert cursor is None
        [(key, points)] = found.items()
        assert key == ("cpu_usage_percent", (("mode", "user"),))
        assert [(p.ts_ms, p.min, p.max, p.count) for p in points] == [
            (T0, 1.0, 4.0, 4),
            (T0 + STEP, 4.0, math.inf, 3),
        ]
        assert points[0].value == 2.5 and math.isnan(points[1].value)
        # evaluated at multiples of the step: a TSDB's cache alignment moves nothing
        assert {(q["start"], q["end"], q["step"]) for q in tsdb.queries} == {
            ("1796570700.000", "1796570760.000", "60000ms")
        }
        assert all("offset 1ms" in q["query"] for q in tsdb.queries)
    assert reader.combined is combined
    assert len(tsdb.queries) == (1 if combined else 4)  # after the first read


async def test_a_refusal_after_the_combined_query_worked_is_an_error() -> None:
    tsdb = FakeTsdb(True, answer())
    reader = BucketReader(tsdb)
    await reader.read('{host_id="h"}', "cpu_usage_percent", T0, T0, STEP, Agg.AVG, 100)
    tsdb.combined = False  # e.g. a TSDB replaced behind the same URL
    with pytest.raises(RefusedQueryError):
        await reader.read('{host_id="h"}', "cpu_usage_percent", T0, T0, STEP, Agg.AVG, 100)


async def test_last_and_a_page_cursor() -> None:
    cols = answer()
    cols["last"] = [(T0 + STEP, "3")]  # no last value for the second bucket: avg stands in
    reader = BucketReader(FakeTsdb(True, cols))
    found, cursor = await reader.read(
        '{host_id="h"}', "cpu_usage_percent", T0, T0 + 10 * STEP, STEP, Agg.LAST, 2
    )
    assert cursor == f"t{T0 + 2 * STEP}"
    [points] = found.values()
    assert points[0] == Point(T0, 3.0, 1.0, 4.0, 4)
    assert points[1].ts_ms == T0 + STEP and math.isnan(points[1].value)


async def test_a_bucket_outside_the_range_or_without_samples_is_left_out() -> None:
    cols = answer()
    cols["count"] = [(T0 + STEP, "0"), (T0 + 2 * STEP, "3")]
    reader = BucketReader(FakeTsdb(True, cols))
    found, _ = await reader.read(
        '{host_id="h"}', "cpu_usage_percent", T0, T0 + STEP, STEP, Agg.MAX, 100
    )
    [points] = found.values()
    assert [(p.ts_ms, p.value) for p in points] == [(T0 + STEP, math.inf)]
