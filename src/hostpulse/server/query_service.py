"""Turns what the store returns into API models: host status, area views, history, processes."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import orjson

from hostpulse import catalog
from hostpulse.server.api.models import (
    AreaGroup,
    AreaRow,
    AreaSnapshot,
    HistoryBatchIn,
    HistorySeriesIn,
    HostOut,
    HostStatus,
    PointOut,
    ProcessesOut,
    ProcessOut,
    SeriesHistory,
)
from hostpulse.server.config import parse_duration
from hostpulse.store.base import Store
from hostpulse.store.blockread import KeptBytes
from hostpulse.store.types import (
    Agg,
    HostRecord,
    LatestValue,
    PointArrays,
    ProcessSnapshot,
    RangeResult,
    SeriesPoints,
    StablePoints,
    Tier,
)

#: The areas of the shortcut routes and the catalog subsystems each one shows.
AREAS: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu",),
    "memory": ("memory",),
    "disk": ("filesystem", "disk"),
    "network": ("network", "netstat"),
    "processes": ("processes",),
}


def area_metrics(area: str) -> list[str]:
    subsystems = AREAS[area]
    return [m.key for m in catalog.METRICS if m.subsystem in subsystems]


def host_status(
    last_seen_ms: int,
    interval_s: float,
    now_ms: int,
    online_factor: float = 2.0,
    stale_factor: float = 10.0,
) -> HostStatus:
    """Online when last seen within ``online_factor`` intervals, stale within ``stale_factor``,
    offline after (or never seen)."""
    if last_seen_ms <= 0:
        return HostStatus.OFFLINE
    interval_ms = (interval_s if interval_s > 0 else 5.0) * 1000
    age = now_ms - last_seen_ms
    if age <= online_factor * interval_ms:
        return HostStatus.ONLINE
    if age <= stale_factor * interval_ms:
        return HostStatus.STALE
    return HostStatus.OFFLINE


def host_out(
    h: HostRecord, status: HostStatus, online_factor: float = 2.0, stale_factor: float = 10.0
) -> HostOut:
    """The host as the API shows it, with the status rule so a client can keep the status
    current between reads (the dashboard does, from live samples) without its own thresholds."""
    interval_s = h.interval_seconds if h.interval_seconds > 0 else 5.0
    return HostOut(
        host_id=h.host_id,
        hostname=h.hostname,
        status=status,
        last_seen_ms=h.last_seen_ms,
        first_seen_ms=h.first_seen_ms,
        interval_seconds=h.interval_seconds,
        os=h.os,
        kernel=h.kernel,
        arch=h.arch,
        cpu_model=h.cpu_model,
        boot_time=h.boot_time,
        logical_cores=h.logical_cores,
        memory_bytes=h.memory_bytes,
        labels=dict(h.labels),
        agent_version=h.agent_version,
        unsupported=list(h.unsupported),
        online_within_seconds=online_factor * interval_s,
        stale_within_seconds=stale_factor * interval_s,
    )


def current_json(host: HostOut, latest: list[LatestValue]) -> bytes:
    """A ``CurrentSnapshot``'s JSON: ``host`` and each newest value as a ``Value``, encoded
    in one call (a model per value, validated again by the framework and encoded through
    ``json.dumps``, was over half of the CPU of a host's ~150 values)."""
    values = [
        {"metric": v.metric, "labels": dict(v.labels), "ts_ms": v.ts_ms, "value": v.value}
        for v in latest
    ]
    return orjson.dumps({"host": host.model_dump(mode="json"), "values": values})


def area_snapshot(host_id: str, area: str, latest: list[LatestValue]) -> AreaSnapshot:
    """Unlabelled metrics as one dict; labelled ones as rows grouped by their label names
    (e.g. ``by=["device", "mountpoint"]``, one row per filesystem with all its values)."""
    scalars: dict[str, float] = {}
    groups: dict[tuple[str, ...], dict[tuple[str, ...], AreaRow]] = {}
    ts: int | None = None
    for v in sorted(latest, key=lambda x: (x.metric, x.labels)):
        ts = v.ts_ms if ts is None else max(ts, v.ts_ms)
        if not v.labels:
            scalars[v.metric] = v.value
            continue
        names = tuple(n for n, _ in v.labels)
        vals = tuple(x for _, x in v.labels)
        rows = groups.setdefault(names, {})
        row = rows.get(vals)
        if row is None:
            row = rows[vals] = AreaRow(labels=dict(v.labels), values={})
        row.values[v.metric] = v.value
    return AreaSnapshot(
        host_id=host_id,
        area=area,
        ts_ms=ts,
        values=scalars,
        groups=[AreaGroup(by=list(k), rows=list(r.values())) for k, r in sorted(groups.items())],
    )


def processes_out(host_id: str, snap: ProcessSnapshot) -> ProcessesOut:
    def rows(items: list[object]) -> list[ProcessOut]:
        return [ProcessOut.model_validate(p, from_attributes=True) for p in items]

    return ProcessesOut(
        host_id=host_id,
        ts_ms=snap.ts_ms,
        top_cpu=rows(list(snap.top_cpu)),
        top_memory=rows(list(snap.top_memory)),
    )


def series_out(items: list[SeriesPoints]) -> list[SeriesHistory]:
    return [
        SeriesHistory(
            metric=s.metric,
            labels=dict(s.labels),
            points=[
                PointOut(ts_ms=p.ts_ms, value=p.value, min=p.min, max=p.max, count=p.count)
                for p in s.points
            ],
        )
        for s in items
    ]


_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_POINT = b'{"ts_ms":%b,"value":%b,"min":%b,"max":%b,"count":%b}'


def points_json(a: PointArrays) -> bytes:
    """``a`` as the JSON list of ``PointOut`` objects, without a Python object per point: each
    column is encoded by orjson from numpy (the same number formatting as for Python floats
    and ints), split into its numbers and interleaved into one format string. 1,440 points:
    0.46 ms of CPU, against 1.6 ms through ``Point`` dataclasses (tests/server, same bytes)."""
    n = len(a)
    if n == 0:
        return b"[]"
    numbers: list[bytes] = [b""] * (5 * n)
    for k, col in enumerate((a.ts_ms, a.value, a.min, a.max, a.count)):
        numbers[k::5] = orjson.dumps(col, option=_NUMPY)[1:-1].split(b",")
    return b"[" + b",".join([_POINT] * n) % tuple(numbers) + b"]"


@dataclass(slots=True)
class _Encoded:
    ts: npt.NDArray[np.int64]
    body: bytes
    """``points_json`` of the points ``ts`` without its brackets."""
    starts: npt.NDArray[np.intp]
    """Where each point's object starts in ``body``, and ``len(body) + 1`` last."""


ENCODED_BYTES = 32 * 2**20
"""JSON kept by ``PointsJsonCache``: a 24 h history at a 60 s step is ~115 KB (~290 kept)."""


class PointsJsonCache:
    """The JSON of the points a history gives again on every read while the stored blocks
    stay as they are (``RangeResult.stable``), at most ``limit`` bytes, least recently used
    out first; used on the event loop only. Encoding 1,440 points cost 0.8 ms of CPU, most of
    a dashboard's repeated "last 24 hours" answered from the store's kept rows; a kept
    answer's points are cut out of the kept JSON, only the newer ones (from the head) are
    encoded."""

    def __init__(self, limit: int = ENCODED_BYTES) -> None:
        self.kept: KeptBytes[Hashable, _Encoded] = KeptBytes(limit, _encoded_bytes)

    def __len__(self) -> int:
        return len(self.kept)

    def encode(self, a: PointArrays, key: Hashable, k: int) -> bytes:
        """``points_json(a)``; its first ``k`` points are those kept under ``key``."""
        return b"".join((b"[", *self.encode_inner(a, key, k), b"]"))

    def encode_inner(self, a: PointArrays, key: Hashable, k: int) -> list[Chunk]:
        """``encode`` without its brackets, in pieces to be joined once with the rest of the
        answer: the kept JSON is not copied before that (a 24 h answer of 1,440 points is
        120 KB; it was copied four times on its way to the answer)."""
        if k == 0:
            return [memoryview(points_json(a))[1:-1]]
        got = self.kept.get(key)
        head = self._cut(got, a, k) if got is not None else None
        if head is None:
            got = self._put(key, a, k)
            head = memoryview(got.body)
        if k == len(a):
            return [head]
        return [head, b",", memoryview(points_json(_tail(a, k)))[1:-1]]

    @staticmethod
    def _cut(got: _Encoded, a: PointArrays, k: int) -> memoryview | None:
        first = int(a.ts_ms[0])
        i = int(np.searchsorted(got.ts, first))
        j = i + k
        if j > len(got.ts) or got.ts[i] != first or got.ts[j - 1] != a.ts_ms[k - 1]:
            return None
        return memoryview(got.body)[got.starts[i] : got.starts[j] - 1]

    def _put(self, key: Hashable, a: PointArrays, k: int) -> _Encoded:
        body = points_json(_tail(a, 0, k))[1:-1]
        ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("}"))
        starts = np.r_[0, ends + 2].astype(np.intp)  # "}," between points
        entry = _Encoded(a.ts_ms[:k].copy(), body, starts)
        self.kept.put(key, entry)
        return entry


def _encoded_bytes(entry: _Encoded) -> int:
    return len(entry.body)


def _tail(a: PointArrays, lo: int, hi: int | None = None) -> PointArrays:
    cut = slice(lo, hi)
    return PointArrays(a.ts_ms[cut], a.value[cut], a.min[cut], a.max[cut], a.count[cut])


#: The API's kept JSON (one per process: a store's keys tell its histories from another's).
POINTS_JSON = PointsJsonCache()


Chunk = bytes | memoryview
"""A piece of an answer, joined once into its body (``history_json``)."""


#: The JSON of series already encoded, by the store's ``SeriesPoints`` object: the store gives
#: the same one to the reads that repeat a history while nothing of it changed.
_ENCODED: weakref.WeakKeyDictionary[SeriesPoints, bytes] = weakref.WeakKeyDictionary()


def _series_parts(s: SeriesPoints, stable: StablePoints | None, i: int) -> list[Chunk]:
    """The JSON of one series of a history, in pieces; ``stable``: the history's
    ``RangeResult.stable``, ``i`` the series' place in it."""
    known = _ENCODED.get(s)
    if known is not None:
        return [known]
    parts = _series_pieces(s, stable, i)
    if s.arrays is not None:  # points kept by the store (``Point`` lists are made per read)
        whole = _ENCODED[s] = b"".join(parts)
        return [whole]
    return parts


def _series_pieces(s: SeriesPoints, stable: StablePoints | None, i: int) -> list[Chunk]:
    head = orjson.dumps({"metric": s.metric, "labels": dict(s.labels)})
    parts: list[Chunk] = [memoryview(head)[:-1], b',"points":']
    a = s.arrays
    if a is None:
        # ``Point`` is a dataclass with the fields of ``PointOut``: orjson encodes it in C
        parts.append(orjson.dumps(s.points))
    elif stable is None or not len(a):
        parts.append(points_json(a))
    elif a.ts_ms[0] < stable.whole:
        # the range starts inside its first bucket: that point is its own, not the kept one
        first = points_json(_tail(a, 0, 1))
        if len(a) == 1:
            parts.append(first)
        else:
            parts += (memoryview(first)[:-1], b",", *_stable_inner(_tail(a, 1), stable, i), b"]")
    else:
        parts += (b"[", *_stable_inner(a, stable, i), b"]")
    parts.append(b"}")
    return parts


def _stable_inner(a: PointArrays, stable: StablePoints, i: int) -> list[Chunk]:
    k = int(np.searchsorted(a.ts_ms, stable.until - stable.step_ms, side="right"))
    return POINTS_JSON.encode_inner(a, stable.keys[i], k)


COLUMNS = ("value", "min", "max", "count")
"""The columns a history may be answered in, besides ``ts_ms`` (``api.models.SeriesColumns``)."""


def _series_columns_json(s: SeriesPoints, columns: tuple[str, ...]) -> bytes:
    doc: dict[str, object] = {"metric": s.metric, "labels": dict(s.labels)}
    a = s.arrays
    for name in ("ts_ms", *columns):
        # numpy columns go to JSON in C, with the number formatting of the ``points`` form
        doc[name] = getattr(a, name) if a is not None else [getattr(p, name) for p in s.points]
    return orjson.dumps(doc, option=_NUMPY)


def history_json(
    host_id: str,
    metric: str,
    start_ms: int,
    end_ms: int,
    agg: Agg,
    res: RangeResult,
    columns: tuple[str, ...] | None = None,
) -> bytes:
    """The JSON of ``api.models.History`` for a store result; with ``columns`` (some of
    ``COLUMNS``) that of ``api.models.HistoryColumns``: each series' ``ts_ms`` and those
    columns as lists, the same numbers as the points."""
    doc = {
        "host_id": host_id,
        "metric": metric,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "agg": agg.value,
        "tier": res.tier.value,
        "step_ms": res.step_ms,
        "series": [],
        "next_cursor": res.next_cursor,
    }
    head, tail = orjson.dumps(doc).split(b'"series":[]', 1)
    parts: list[Chunk] = [head, b'"series":[']
    for i, s in enumerate(res.series):
        if i:
            parts.append(b",")
        if columns is None:
            parts += _series_parts(s, res.stable, i)
        else:
            parts.append(_series_columns_json(s, columns))
    parts += (b"]", tail)
    return b"".join(parts)


class HistoryError(Exception):
    """A history query the API refuses: ``status`` (404, 422) and what is wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def check_metric(metric: str) -> None:
    if metric not in catalog.BY_KEY and not catalog.is_custom(metric):
        raise HistoryError(404, f"unknown metric {metric!r} (not in the catalog)")


def check_labels(metric: str, labels: dict[str, str]) -> None:
    known = catalog.BY_KEY.get(metric)  # custom:<name> series have free labels
    allowed = known.labels if known is not None else tuple(labels)
    for name in labels:
        if name not in allowed:
            raise HistoryError(422, f"label.{name}: {metric} has labels {list(allowed)}")


async def history_body(
    store: Store,
    host_id: str,
    metric: str,
    labels: dict[str, str],
    start_ms: int,
    end_ms: int,
    *,
    step_ms: int | None,
    agg: Agg,
    tier: Tier | None,
    cursor: str | None = None,
    limit: int = 10_000,
    columns: tuple[str, ...] | None = None,
) -> bytes:
    """The JSON of one history (``api.models.History``, or ``HistoryColumns`` with
    ``columns``) of a known metric of a known host."""
    try:
        res = await store.query_range(
            host_id,
            metric,
            start_ms,
            end_ms,
            labels=labels or None,
            step_ms=step_ms,
            agg=agg,
            tier=tier,
            cursor=cursor,
            limit=limit,
        )
    except ValueError as exc:  # a cursor that is not ours
        raise HistoryError(422, str(exc)) from None
    # Thousands of points: encoded straight from the store's columns (the shape of
    # ``History``), not through one validated model per point, which cost ~8x the query.
    return history_json(host_id, metric, start_ms, end_ms, agg, res, columns)


async def _batch_item(
    store: Store,
    item: HistorySeriesIn,
    start_ms: int,
    end_ms: int,
    batch: HistoryBatchIn,
    step_ms: int | None,
    columns: tuple[str, ...] | None,
) -> bytes:
    try:
        check_metric(item.metric)
        if await store.host(item.host_id) is None:
            raise HistoryError(404, f"unknown host {item.host_id!r}")
        check_labels(item.metric, item.labels)
        return await history_body(
            store,
            item.host_id,
            item.metric,
            item.labels,
            start_ms,
            end_ms,
            step_ms=step_ms,
            agg=batch.agg,
            tier=batch.tier,
            limit=batch.limit,
            columns=columns,
        )
    except HistoryError as exc:
        err = {"host_id": item.host_id, "metric": item.metric, "status": exc.status}
        return orjson.dumps({**err, "error": exc.detail})


async def history_batch(
    store: Store, batch: HistoryBatchIn, start_ms: int, end_ms: int, step_ms: int | None
) -> bytes:
    """The JSON of ``api.models.HistoryBatch``: each series' history, or why not, in order.
    The reads run concurrently (the store reads blocks in worker threads)."""
    columns = None
    if batch.columns is not None:
        columns = tuple(c for c in COLUMNS if c in batch.columns)  # in order, once each
    bodies = await asyncio.gather(
        *(_batch_item(store, i, start_ms, end_ms, batch, step_ms, columns) for i in batch.series)
    )
    return b"".join((b'{"results":[', b",".join(bodies), b"]}"))


MAX_TIME_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the latest time a query may name (a larger number is a typo, and
would overflow the 64-bit arithmetic of the store's buckets)."""


def parse_time(value: str, now_ms: int) -> int:
    """Milliseconds since the epoch from ``1700000000000`` (ms), ``1700000000`` (s, 10 digits or
    fewer), an ISO 8601 time (``2026-11-22T04:00:00Z``), ``now`` or ``now-24h`` / ``-24h``."""
    text = value.strip()
    if text == "now":
        return now_ms
    if text.startswith("now-") or text.startswith("-"):
        ms = now_ms - int(parse_duration(text.split("-", 1)[1]) * 1000)
    elif text.lstrip("-").isdigit():
        if len(text) > 20:
            raise ValueError(f"{value!r} is out of range")
        n = int(text)
        ms = n * 1000 if abs(n) < 10**11 else n
    else:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a time (ms since epoch, ISO 8601, now or now-24h)"
            ) from None
        if dt.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone (add Z or +00:00)")
        ms = int(dt.timestamp() * 1000)
    if abs(ms) > MAX_TIME_MS:
        raise ValueError(f"{value!r} is out of range (after the year 9999)")
    return ms
