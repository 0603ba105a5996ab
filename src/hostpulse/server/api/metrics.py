"""Metric history per host, the per-area shortcuts and the catalog."""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hostpulse import catalog
from hostpulse.server import query_service as qs
from hostpulse.server.api.deps import StateDep
from hostpulse.server.api.hosts import require_host, time_param
from hostpulse.server.api.models import (
    MAX_BATCH_SERIES,
    AreaSnapshot,
    CatalogMetric,
    History,
    HistoryBatch,
    HistoryBatchIn,
)
from hostpulse.server.auth.deps import auth_of, require, user_of
from hostpulse.server.auth.roles import Role
from hostpulse.server.auth.service import bearer
from hostpulse.server.config import parse_duration
from hostpulse.server.state import AppState
from hostpulse.store.exceptions import StoreUnavailableError
from hostpulse.store.types import Agg, Tier

router = APIRouter(tags=["metrics"])
_GZIP_FROM = 16 * 1024
"""Batch answers at least this long go gzipped to a client that accepts it: a 12-widget board
over 24 h of 10 hosts reads 2.0 MB of columns, 0.6 MB gzipped at level 1 (14 ms of CPU)."""

_HISTORY_DOC = """History of one metric of one host.

Times (`start`, `end`) are milliseconds since the epoch, seconds since the epoch, ISO 8601 with a
zone, `now` or `now-24h`. `step` is a duration (`60`, `60s`, `5m`, `1h`); without it the store
picks one. Filter by label with `label.<name>=<value>` (e.g. `label.device=sda`). Without `tier`
the tier is chosen from the range and step (raw, 1-minute or 1-hour rollups); the response says
which. Long answers are paged: pass `next_cursor` back as `cursor`."""


@router.get(
    "/hosts/{host_id}/metrics/{metric}/history",
    response_model=History,
    responses={404: {"description": "Unknown host or metric."}},
    summary="History of a metric of a host",
    description=_HISTORY_DOC,
)
async def history(
    request: Request,
    host_id: str,
    metric: str,
    state: StateDep,
    start: Annotated[str | None, Query(description="Default: 1 hour before end.")] = None,
    end: Annotated[str | None, Query(description="Default: now.")] = None,
    step: Annotated[str | None, Query(description="Point spacing, e.g. 60s or 5m.")] = None,
    agg: Annotated[Agg, Query(description="How points within a step combine.")] = Agg.AVG,
    tier: Annotated[Tier | None, Query(description="Force a tier; default automatic.")] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the last page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Points per page.")] = 10_000,
) -> Response:
    labels = {
        k.removeprefix("label."): v
        for k, v in request.query_params.items()
        if k.startswith("label.")
    }
    body = await history_answer(
        state, host_id, metric, start, end, step, agg, tier, cursor, limit, labels
    )
    return Response(content=body, media_type="application/json")


MAX_LIMIT = 100_000


async def history_answer(
    state: AppState,
    host_id: str,
    metric: str,
    start: str | None,
    end: str | None,
    step: str | None,
    agg: Agg,
    tier: Tier | None,
    cursor: str | None,
    limit: int,
    labels: dict[str, str],
) -> bytes:
    """The body of a history answer (the route and ``HistoryFastPath``); HTTPException for
    an unknown host or metric, a bad time, step, label or cursor."""
    try:
        qs.check_metric(metric)
    except qs.HistoryError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    await require_host(state, host_id)
    now = state.now_ms()
    end_ms = time_param(end, now, "end", now)
    start_ms = time_param(start, end_ms - 3_600_000, "start", now)
    if start_ms > end_ms:
        raise HTTPException(422, "start is after end")
    step_ms = _step(step)
    try:
        qs.check_labels(metric, labels)
        return await qs.history_body(
            state.store,
            host_id,
            metric,
            labels,
            start_ms,
            end_ms,
            step_ms=step_ms,
            agg=agg,
            tier=tier,
            cursor=cursor,
            limit=limit,
        )
    except qs.HistoryError as exc:
        raise HTTPException(exc.status, exc.detail) from None


_HISTORY_PATH = re.compile(r"/api/v1/hosts/([^/]+)/metrics/([^/]+)/history")
_TEXT_PARAMS = frozenset(("start", "end", "step", "cursor"))
_AGGS = {a.value: a for a in Agg}
_TIERS = {t.value: t for t in Tier}
_VIEWER = require(Role.viewer)


class HistoryFastPath:
    """Answers ``GET /api/v1/hosts/{host_id}/metrics/{metric}/history`` without the
    framework's routing and dependency solving, which cost ~1 ms of CPU per request (cProfile
    on the loop thread: the route's match among all the API's routes, then the validation of
    eleven parameters), most of a history answered from the store's caches. A middleware
    inside the app, for an app served without ``server/front.py``'s ``Front`` (which answers
    the same requests with ``answer_history`` before the middleware stack)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if await answer_history(scope["app"], scope, receive, send) is None:
            await self.app(scope, receive, send)


Header = tuple[bytes, bytes]


async def answer_history(
    app: Any, scope: Scope, receive: Receive, send: Send, edge: Sequence[Header] = ()
) -> int | None:
    """Answer a ``GET .../history`` request the route would accept as it is, with ``edge``
    added to the answer's headers; the status sent. None, with nothing sent, for any other
    request: another path, a parameter repeated, unknown or malformed (``agg``, ``tier`` not
    one of their values, ``limit`` not a whole number within bounds): the route judges it, so
    every refusal of a malformed request is the framework's own. What follows is the route's:
    the same bearer check and rate count (``user_of``, as ``current_user``), the viewer role,
    ``history_answer``, and the same ``{"detail": ...}`` answers (the app's handlers) for its
    HTTPExceptions."""
    m = _HISTORY_PATH.fullmatch(scope["path"])
    params = _params(scope["query_string"]) if m is not None else None
    if m is None or params is None:
        return None
    try:
        credential = bearer(_header(scope, b"authorization"))
        await _VIEWER(await user_of(auth_of(app.state), credential))
        body = await history_answer(app.state.hp, m[1], m[2], **params)
    except (HTTPException, StoreUnavailableError) as exc:
        # answered by the app's handler, as when the route raises it (app.py, FastAPI's)
        handlers = app.exception_handlers
        handler = handlers.get(type(exc)) or handlers.get(StarletteHTTPException)
        if handler is None and isinstance(exc, HTTPException):
            handler = http_exception_handler
        if handler is None:
            raise
        answer = await handler(Request(scope, receive), exc)
        await answer(scope, receive, _with_headers(send, edge) if edge else send)
        return int(answer.status_code)
    # the headers starlette's ``Response`` sends for this body, without building one
    headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE, *edge]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return 200


def _header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header of a request (as starlette's ``Request.headers.get``)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _with_headers(send: Send, extra: Sequence[Header]) -> Send:
    """``send`` with ``extra`` added to the answer's headers it does not have."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {k.lower() for k, _ in headers}
            headers += [h for h in extra if h[0] not in present]
            message = {**message, "headers": headers}
        await send(message)

    return sending


_JSON_TYPE = (b"content-type", b"application/json")


def _params(query: bytes) -> dict[str, Any] | None:
    """The route's parameters from a query string, or None when the route itself should
    judge it (an unknown or repeated parameter, a value it would refuse)."""
    out: dict[str, Any] = {
        "start": None,
        "end": None,
        "step": None,
        "agg": Agg.AVG,
        "tier": None,
        "cursor": None,
        "limit": 10_000,
        "labels": {},
    }
    seen: set[str] = set()
    for key, value in _pairs(query.decode("latin-1")):
        if key in seen:
            return None
        seen.add(key)
        if key in _TEXT_PARAMS:
            out[key] = value
        elif key == "agg":
            if value not in _AGGS:
                return None
            out["agg"] = _AGGS[value]
        elif key == "tier":
            if value not in _TIERS:
                return None
            out["tier"] = _TIERS[value]
        elif key == "limit":
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
                return None
            out["limit"] = int(value)
        elif key.startswith("label."):
            out["labels"][key.removeprefix("label.")] = value
        else:
            return None
    return out


def _pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``; a query with nothing to unquote (no
    ``%``, no ``+``: what a dashboard and the bench send) is split without it (``parse_qsl``
    unquotes every name and value: a fifth of the fast path's own CPU)."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    return [(k, v) for k, _, v in (f.partition("=") for f in query.split("&") if f)]


def _step(step: str | None) -> int | None:
    if step is None:
        return None
    try:
        step_ms = int(parse_duration(step) * 1000)
    except ValueError as exc:
        raise HTTPException(422, f"step: {exc}") from None
    if step_ms <= 0:
        raise HTTPException(422, "step must be positive")
    if step_ms > qs.MAX_TIME_MS:
        raise HTTPException(422, "step is longer than any range a query can name")
    return step_ms


_BATCH_DOC = f"""Histories of several series (hosts and metrics) over one range, in one request:
what a dashboard board reads. At most {MAX_BATCH_SERIES} series (422 past that). Each result is the
`History` the one-series route answers (up to `limit` points per series; a longer one has a
`next_cursor`: read the rest from the one-series route), or, for a series that route would
refuse, `{{host_id, metric, status, error}}` with its status (404 unknown host or metric, 422 a
label the metric does not have). Times and `step` as for the one-series route; a number is
milliseconds since the epoch. With `columns` (some of `value`, `min`, `max`, `count`) each series
is `{{metric, labels, ts_ms: [...], <column>: [...]}}` instead of `points` objects. An answer of
16 KB or more is gzipped for a client that accepts it."""


@router.post(
    "/history",
    response_model=HistoryBatch,
    summary="Histories of several series at once",
    description=_BATCH_DOC,
)
async def history_batch(batch: HistoryBatchIn, state: StateDep, request: Request) -> Response:
    now = state.now_ms()
    end_ms = time_param(None if batch.end is None else str(batch.end), now, "end", now)
    start = None if batch.start is None else str(batch.start)
    start_ms = time_param(start, end_ms - 3_600_000, "start", now)
    if start_ms > end_ms:
        raise HTTPException(422, "start is after end")
    body = await qs.history_batch(state.store, batch, start_ms, end_ms, _step(batch.step))
    headers = {"vary": "Accept-Encoding"}
    if len(body) >= _GZIP_FROM and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1, mtime=0)
        headers["content-encoding"] = "gzip"
    return Response(content=body, media_type="application/json", headers=headers)


@router.get(
    "/metrics/{area}",
    response_model=AreaSnapshot,
    responses={404: {"description": "Unknown host."}},
    summary="Current values of one area (cpu, memory, disk, network, processes)",
)
async def area(
    area: Literal["cpu", "memory", "disk", "network", "processes"],
    state: StateDep,
    host: Annotated[str, Query(description="The host_id.")],
) -> AreaSnapshot:
    await require_host(state, host)
    latest = await state.store.latest(host, qs.area_metrics(area))
    snap = qs.area_snapshot(host, area, latest)
    if area == "processes":
        procs = await state.store.processes(host, None)
        snap.processes = None if procs is None else qs.processes_out(host, procs)
    return snap


@router.get("/catalog", response_model=list[CatalogMetric], summary="Every metric hostpulse knows")
async def list_catalog() -> list[CatalogMetric]:
    return [
        CatalogMetric(
            key=m.key,
            prom_name=m.prom_name,
            subsystem=m.subsystem,
            unit=m.unit,
            kind=m.kind.value,
            help=m.help,
            labels=list(m.labels),
            rate_of=m.rate_of,
        )
        for m in catalog.METRICS
    ]
