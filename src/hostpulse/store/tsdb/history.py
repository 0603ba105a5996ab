"""History buckets read from the TSDB: avg, min, max and count (and last, when asked) of each
``step`` bucket of a host's series, as the embedded store's rollups give them.

One range query when the TSDB understands MetricsQL's ``aggr_over_time`` (VictoriaMetrics):
the samples are read once for every aggregation, and the answer carries one series per
aggregation (label ``rollup``). Prometheus does not: there, one range query per aggregation.
Which one applies is found out on the first history read (a TSDB that refuses the combined
query with HTTP 400/422 gets the separate ones from then on).

Bucket ``b`` covers ``[b, b + step)``; it is evaluated at ``b + step`` with ``offset 1ms``, so
the window is ``(b - 1 ms, b + step - 1 ms]``. The evaluation times are multiples of the step:
VictoriaMetrics moves the start and end of a range query of 50 points or more to multiples of
the step (for its result cache), which here leaves them where they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import repeat
from operator import itemgetter, mul, sub
from typing import Any

from hostpulse.store.exceptions import StoreUnavailableError
from hostpulse.store.tsdb import queries as q
from hostpulse.store.types import Agg, Point

Key = tuple[str, tuple[tuple[str, str], ...]]
Query = Callable[[dict[str, str]], Awaitable[list[dict[str, Any]]]]
"""A range query (its form parameters) -> ``data.result`` of the answer."""

CURSOR_PREFIX = "t"
MAX_POINTS_PER_QUERY = 11_000
"""Prometheus refuses a range query of more points per series than this."""
ROLLUP_LABEL = "rollup"
"""The label ``aggr_over_time`` names each aggregation's series with."""
_BASE = ("avg", "min", "max", "count")
_TS = itemgetter(0)
_VALUE = itemgetter(1)


class RefusedQueryError(StoreUnavailableError):
    """The TSDB answered a query with HTTP 400 or 422 (it does not understand it)."""


def _columns(values: list[list[Any]], step: int) -> tuple[list[int], list[float]]:
    """Bucket starts and values of one answered series (evaluation time minus a step)."""
    stamps = list(map(sub, map(round, map(mul, map(_TS, values), repeat(1000))), repeat(step)))
    try:
        numbers = list(map(float, map(_VALUE, values)))
    except ValueError:  # not a number the TSDB should send: NaN, as ``q.number`` reads it
        numbers = [q.number(v) for v in map(_VALUE, values)]
    return stamps, numbers


def _aligned(
    column: tuple[list[int], list[float]] | None, stamps: list[int], default: list[float]
) -> list[float]:
    """``column``'s values at ``stamps`` (``default`` where it has none)."""
    if column is None:
        return default
    if column[0] == stamps:
        return column[1]
    found = dict(zip(*column, strict=True))
    return [found.get(b, d) for b, d in zip(stamps, default, strict=True)]


def _points(
    columns: dict[str, tuple[list[int], list[float]]], agg: Agg, first: int, last: int
) -> list[Point]:
    counts = columns.get("count")
    if counts is None:
        return []
    stamps, ns = counts
    zeros = [0.0] * len(stamps)
    avg = _aligned(columns.get("avg"), stamps, zeros)
    mins = _aligned(columns.get("min"), stamps, zeros)
    maxs = _aligned(columns.get("max"), stamps, zeros)
    values = avg if agg is Agg.AVG else _aligned(columns.get(agg.value), stamps, avg)
    if stamps and stamps[0] >= first and stamps[-1] <= last and min(ns) > 0:
        return list(map(Point, stamps, values, mins, maxs, map(int, ns)))
    return [
        Point(b, v, mn, mx, int(n))
        for b, v, mn, mx, n in zip(stamps, values, mins, maxs, ns, strict=True)
        if n > 0 and first <= b <= last
    ]


class BucketReader:
    """Reads history buckets through ``query_range``; remembers whether the TSDB takes the
    combined query (``combined``: None until the first read)."""

    def __init__(self, query_range: Query) -> None:
        self._query_range = query_range
        self.combined: bool | None = None

    async def read(
        self,
        sel: str,
        metric: str,
        lo: int,
        end_ms: int,
        step: int,
        agg: Agg,
        limit: int,
        *,
        may_combine: bool = True,
    ) -> tuple[dict[Key, list[Point]], str | None]:
        """Points of ``step`` buckets from the bucket of ``lo`` to the one of ``end_ms``, per
        series of ``sel`` (series of ``metric``); the cursor of the next page, if any.
        ``may_combine``: False when a series has a label named ``rollup`` of its own."""
        first = lo - lo % step
        last = end_ms - end_ms % step
        cap = min(limit, MAX_POINTS_PER_QUERY) if limit > 0 else MAX_POINTS_PER_QUERY
        next_cursor = None
        if (last - first) // step + 1 > cap:
            last = first + (cap - 1) * step
            next_cursor = f"{CURSOR_PREFIX}{last + step}"
        names = [*_BASE, *([Agg.LAST.value] if agg is Agg.LAST else [])]
        params = {
            "start": q.seconds(first + step),
            "end": q.seconds(last + step),
            "step": q.duration(step),
        }
        window = f"{sel}[{q.duration(step)}] offset 1ms"
        columns: dict[Key, dict[str, tuple[list[int], list[float]]]] = {}
        if may_combine and self.combined is not False:
            functions = ", ".join(q.quote(q.OVER_TIME[n]) for n in names)
            try:
                result = await self._query_range(
                    {**params, "query": f"aggr_over_time(({functions}), {window})"}
                )
            except RefusedQueryError:
                if self.combined:
                    raise
                self.combined = False
            else:
                self.combined = True
                by_function = {q.OVER_TIME[n]: n for n in names}
                for item in result:
                    labels = dict(item["metric"])
                    name = by_function.get(labels.pop(ROLLUP_LABEL, ""))
                    if name is not None:
                        key = q.series_key(labels, metric)
                        columns.setdefault(key, {})[name] = _columns(item.get("values", []), step)
                return self._found(columns, agg, first, last), next_cursor
        answers = await asyncio.gather(
            *(self._query_range({**params, "query": f"{q.OVER_TIME[n]}({window})"}) for n in names)
        )
        for name, result in zip(names, answers, strict=True):
            for item in result:
                key = q.series_key(item["metric"], metric)
                columns.setdefault(key, {})[name] = _columns(item.get("values", []), step)
        return self._found(columns, agg, first, last), next_cursor

    @staticmethod
    def _found(
        columns: dict[Key, dict[str, tuple[list[int], list[float]]]],
        agg: Agg,
        first: int,
        last: int,
    ) -> dict[Key, list[Point]]:
        return {key: _points(cols, agg, first, last) for key, cols in columns.items()}
