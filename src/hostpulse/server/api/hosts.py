"""Hosts: the list with status, one host, its current values, series and processes."""

from __future__ import annotations

import gzip
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from hostpulse.server import query_service as qs
from hostpulse.server.api.deps import StateDep
from hostpulse.server.api.models import (
    MAX_BATCH_HOSTS,
    CurrentBatch,
    CurrentBatchIn,
    CurrentItemError,
    CurrentSnapshot,
    HostOut,
    ProcessesOut,
    ProcessHistory,
    SeriesOut,
)
from hostpulse.server.state import AppState
from hostpulse.store.types import HostRecord

router = APIRouter(tags=["hosts"])
_HOST_LIST = TypeAdapter(list[HostOut])
_GZIP_FROM = 16 * 1024
"""Host lists at least this long go gzipped to a client that accepts it: 10,000 hosts are
4.2 MB of JSON, 245 KB gzipped at level 1, which costs 9 ms of CPU."""
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"description": "Unknown host."}}


def status_of(state: AppState, h: HostRecord) -> HostOut:
    s = state.settings
    status = qs.host_status(
        h.last_seen_ms, h.interval_seconds, state.now_ms(), s.online_factor, s.stale_factor
    )
    return qs.host_out(h, status, s.online_factor, s.stale_factor)


async def require_host(state: AppState, host_id: str) -> HostRecord:
    h = await state.store.host(host_id)
    if h is None:
        raise HTTPException(404, f"unknown host {host_id!r}")
    return h


def time_param(value: str | None, default: int, name: str, now_ms: int) -> int:
    if value is None:
        return default
    try:
        return qs.parse_time(value, now_ms)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


@router.get("/hosts", response_model=list[HostOut], summary="All hosts with their status")
async def list_hosts(state: StateDep, request: Request) -> Response:
    """Status: `online` when last seen within 2 intervals, `stale` within 10, else `offline`
    (factors configurable). Gzipped when long and the client accepts it."""
    hosts = [status_of(state, h) for h in await state.store.hosts()]
    # encoded by pydantic in one call: returned as models, FastAPI validated all of them again
    # and encoded them through json.dumps, 40 % more CPU for 10,000 hosts (the fleet page's
    # first request)
    body = _HOST_LIST.dump_json(hosts)
    headers = {"vary": "Accept-Encoding"}
    if len(body) >= _GZIP_FROM and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1, mtime=0)
        headers["content-encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/hosts/{host_id}", response_model=HostOut, responses=_NOT_FOUND)
async def get_host(host_id: str, state: StateDep) -> HostOut:
    return status_of(state, await require_host(state, host_id))


@router.get(
    "/hosts/{host_id}/current",
    response_model=CurrentSnapshot,
    responses=_NOT_FOUND,
    summary="The newest value of every series of a host",
)
async def current(
    host_id: str,
    state: StateDep,
    metric: Annotated[list[str] | None, Query(description="Only these catalog keys.")] = None,
) -> Response:
    h = await require_host(state, host_id)
    latest = await state.store.latest(host_id, metric or None)
    return Response(qs.current_json(status_of(state, h), latest), media_type="application/json")


@router.post(
    "/current",
    response_model=CurrentBatch,
    summary="The newest values of several hosts at once",
    description=f"""What `GET /hosts/{{host_id}}/current` answers, for up to {MAX_BATCH_HOSTS}
hosts in one request (a board's stats, gauges and bars over a fleet): one result per host in the
order asked, or `{{host_id, status, error}}` for an unknown host (404).""",
)
async def current_batch(batch: CurrentBatchIn, state: StateDep) -> Response:
    results: list[bytes] = []
    for host_id in batch.hosts:
        h = await state.store.host(host_id)
        if h is None:
            error = CurrentItemError(host_id=host_id, status=404, error=f"unknown host {host_id!r}")
            results.append(error.model_dump_json().encode())
            continue
        latest = await state.store.latest(host_id, batch.metrics or None)
        results.append(qs.current_json(status_of(state, h), latest))
    return Response(b'{"results":[' + b",".join(results) + b"]}", media_type="application/json")


@router.get("/hosts/{host_id}/series", response_model=list[SeriesOut], responses=_NOT_FOUND)
async def list_series(
    host_id: str,
    state: StateDep,
    metric: Annotated[str | None, Query(description="Only this catalog key.")] = None,
) -> list[SeriesOut]:
    await require_host(state, host_id)
    rows = await state.store.series(host_id, metric)
    return [SeriesOut(metric=s.metric, labels=dict(s.labels)) for s in rows]


@router.get(
    "/hosts/{host_id}/processes",
    response_model=ProcessesOut,
    responses={404: {"description": "Unknown host or no process list at that time."}},
    summary="Top processes by CPU and memory",
)
async def processes(
    host_id: str,
    state: StateDep,
    at: Annotated[
        str | None, Query(description="The newest list at or before this time; default now.")
    ] = None,
) -> ProcessesOut:
    await require_host(state, host_id)
    now = state.now_ms()
    at_ms = None if at is None else time_param(at, now, "at", now)
    snap = await state.store.processes(host_id, at_ms)
    if snap is None:
        raise HTTPException(404, f"no process list for host {host_id!r}")
    return qs.processes_out(host_id, snap)


@router.get(
    "/hosts/{host_id}/processes/history",
    response_model=ProcessHistory,
    responses=_NOT_FOUND,
    summary="Top-process lists over a time range",
)
async def process_history(
    host_id: str,
    state: StateDep,
    start: Annotated[str | None, Query(description="Default: 1 hour before end.")] = None,
    end: Annotated[str | None, Query(description="Default: now.")] = None,
) -> ProcessHistory:
    await require_host(state, host_id)
    now = state.now_ms()
    end_ms = time_param(end, now, "end", now)
    start_ms = time_param(start, end_ms - 3_600_000, "start", now)
    if start_ms > end_ms:
        raise HTTPException(422, "start is after end")
    snaps = await state.store.process_history(host_id, start_ms, end_ms)
    return ProcessHistory(
        host_id=host_id,
        start_ms=start_ms,
        end_ms=end_ms,
        snapshots=[qs.processes_out(host_id, s) for s in snaps],
    )
