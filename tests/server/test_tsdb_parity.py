"""Parity of the two sample stores, through the HTTP API: the same simulated fleet pushed to a
server on the embedded store and to a server on the TSDB backend (the real Debian
``victoria-metrics``, and ``prometheus`` with its remote-write receiver) gives the same hosts,
current values, raw history, per-minute avg/min/max bands and process lists, within the
documented resolution (docs/tsdb.md: the embedded store rounds some units, e.g. percentages to
0.001; VictoriaMetrics keeps 12 significant digits). Also: a TSDB that is down makes ingest
answer 503 with Retry-After (the agent keeps its spool) and readiness fail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from promserver import free_port
from tsdbkit import prometheus_receiver, victoria_metrics

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, IngestRequest, codec
from hostpulse.server.testing import LiveServer
from hostpulse.sim.build import host_batch
from hostpulse.sim.push import make_hosts
from hostpulse.store.quantize import resolution_k

HOSTS = 3
MINUTES = 20
INTERVAL_S = 5.0
CHUNK = 60  # snapshots per request, as the simulator's back-fill sends them
PB = {"content-type": PROTOBUF_CONTENT_TYPE, "content-encoding": "gzip"}
HISTORY_METRICS = ("cpu_busy_percent", "memory_used_bytes", "network_receive_bytes_per_second")


def fleet_requests(end_ms: int) -> list[IngestRequest]:
    """The same requests every time (fresh simulated hosts with fixed seeds)."""
    step = int(INTERVAL_S * 1000)
    start = end_ms - MINUTES * 60_000
    out = []
    hosts = make_hosts(HOSTS, seed=3)
    seq = 0
    for t in range(start, end_ms, CHUNK * step):
        ts = np.arange(t, min(end_ms, t + CHUNK * step), step, dtype=np.int64)
        for h in hosts:
            out.append(IngestRequest(batches=[host_batch(h, ts, INTERVAL_S, sequence_start=seq)]))
        seq += len(ts)
    return out


def push(srv: LiveServer, requests: list[IngestRequest]) -> None:
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        for req in requests:
            host_id = req.batches[0].host.host_id
            r = client.post(
                "/api/v1/ingest",
                content=codec.encode(req, encoding="gzip"),
                headers={**PB, **srv.agent_headers(host_id)},
            )
            assert r.status_code == 200, r.text


def get(srv: LiveServer, path: str, **params: Any) -> Any:
    r = httpx.get(
        f"{srv.url}/api/v1{path}", params=params, headers=srv.headers("viewer"), timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()


def tolerance(metric: str, value: float) -> float:
    """How far the two stores may differ on a value: half the embedded store's resolution for
    a unit it rounds, plus VictoriaMetrics' 12 significant digits."""
    k, lossy = resolution_k(metric)
    return (0.5 * 10.0**-k if lossy else 0.0) + abs(value) * 1e-11 + 1e-9


def close(metric: str, a: float, b: float) -> bool:
    return abs(a - b) <= tolerance(metric, max(abs(a), abs(b))) * 1.0001


@pytest.fixture(scope="module")
def end_ms() -> int:
    """The end of the data: a whole minute at least a minute ago. A bucket's query point is
    its end (``b + step``); one still in the future is filled by VictoriaMetrics with the
    previous point's value, so a history up to a minute that began seconds ago had a bucket
    more than the embedded store's (seen when the machine was slow)."""
    now = int(time.time() * 1000)
    return now - now % 60_000 - 60_000


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, end_ms: int) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("embedded")) as srv:
        push(srv, fleet_requests(end_ms))
        yield srv


@pytest.fixture(scope="module", params=["victoria-metrics", "prometheus"])
def tsdb(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, end_ms: int
) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp(request.param)
    if request.param == "victoria-metrics":  # with its result cache, as deployed
        tsdb_server = victoria_metrics(base / "tsdb", cache=True)
    else:
        tsdb_server = prometheus_receiver(base / "tsdb")
    with tsdb_server as url, LiveServer(base / "server", tsdb_url=url) as srv:
        push(srv, fleet_requests(end_ms))
        # VictoriaMetrics makes samples searchable seconds after acknowledging them (at once
        # when asked: /internal/force_flush, there for tests)
        deadline = time.monotonic() + 30
        host = f"sim-{HOSTS - 1:05d}"
        while time.monotonic() < deadline:
            if request.param == "victoria-metrics":
                httpx.get(f"{url}/internal/force_flush", timeout=30).raise_for_status()
            values = get(srv, f"/hosts/{host}/current")["values"]
            if (
                values
                and get(
                    srv,
                    f"/hosts/{host}/metrics/cpu_busy_percent/history",
                    start=str(end_ms - 60_000),
                )["series"][0]["points"]
            ):
                break
            time.sleep(0.25)
        yield srv


def test_same_hosts(embedded: LiveServer, tsdb: LiveServer) -> None:
    a = {h["host_id"]: h for h in get(embedded, "/hosts")}
    b = {h["host_id"]: h for h in get(tsdb, "/hosts")}
    assert sorted(a) == sorted(b) == [f"sim-{i:05d}" for i in range(HOSTS)]
    for host_id, ha in a.items():
        hb = b[host_id]
        for field in ("first_seen_ms",):  # the time each server first heard of the host
            ha.pop(field), hb.pop(field)
        assert ha == hb


def test_same_current_values(embedded: LiveServer, tsdb: LiveServer) -> None:
    for i in range(HOSTS):
        path = f"/hosts/sim-{i:05d}/current"
        a = {(v["metric"], tuple(v["labels"].items())): v for v in get(embedded, path)["values"]}
        b = {(v["metric"], tuple(v["labels"].items())): v for v in get(tsdb, path)["values"]}
        assert sorted(a) == sorted(b)
        for key, va in a.items():
            vb = b[key]
            assert va["ts_ms"] == vb["ts_ms"], key
            assert close(key[0], va["value"], vb["value"]), (key, va, vb)
    for area in ("cpu", "memory", "disk", "network"):
        a = get(embedded, f"/metrics/{area}", host="sim-00001")
        b = get(tsdb, f"/metrics/{area}", host="sim-00001")
        assert a["ts_ms"] == b["ts_ms"] and sorted(a["values"]) == sorted(b["values"])
        assert [g["by"] for g in a["groups"]] == [g["by"] for g in b["groups"]]


def _history(srv: LiveServer, host: str, metric: str, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = get(srv, f"/hosts/{host}/metrics/{metric}/history", **params)
    return body


def _compare(metric: str, a: dict[str, Any], b: dict[str, Any], bands: bool) -> None:
    assert (a["tier"], a["step_ms"], a["next_cursor"]) == (b["tier"], b["step_ms"], None)
    sa = {tuple(s["labels"].items()): s["points"] for s in a["series"]}
    sb = {tuple(s["labels"].items()): s["points"] for s in b["series"]}
    assert sorted(sa) == sorted(sb)
    for labels, pa in sa.items():
        pb = sb[labels]
        assert [p["ts_ms"] for p in pa] == [p["ts_ms"] for p in pb], (metric, labels)
        assert [p["count"] for p in pa] == [p["count"] for p in pb], (metric, labels)
        assert len(pa) > 0
        for x, y in zip(pa, pb, strict=True):
            assert close(metric, x["value"], y["value"]), (metric, labels, x, y)
            if bands:
                assert close(metric, x["min"], y["min"]) and close(metric, x["max"], y["max"])


def test_same_raw_history(embedded: LiveServer, tsdb: LiveServer, end_ms: int) -> None:
    start = str(end_ms - MINUTES * 60_000)
    for metric in HISTORY_METRICS:
        for i in range(HOSTS):
            host = f"sim-{i:05d}"
            a = _history(embedded, host, metric, start=start, end=str(end_ms))
            b = _history(tsdb, host, metric, start=start, end=str(end_ms))
            assert a["tier"] == "raw"
            _compare(metric, a, b, bands=True)
            assert len(a["series"][0]["points"]) == MINUTES * 12


@pytest.mark.parametrize("agg", ["avg", "min", "max"])
def test_same_minute_bands(embedded: LiveServer, tsdb: LiveServer, end_ms: int, agg: str) -> None:
    start = str(end_ms - MINUTES * 60_000 - 30_000)  # from the middle of a minute
    for metric in HISTORY_METRICS:
        for params in ({"step": "60s"}, {"tier": "1m"}, {"step": "5m"}):
            a = _history(embedded, "sim-00002", metric, start=start, agg=agg, **params)
            b = _history(tsdb, "sim-00002", metric, start=start, agg=agg, **params)
            _compare(metric, a, b, bands=True)


def test_same_bands_of_many_points(embedded: LiveServer, tsdb: LiveServer, end_ms: int) -> None:
    """A history of 50 points or more: VictoriaMetrics then moves a range query's start and end
    to multiples of the step (for its cache) unless they are already; the buckets stay the
    embedded store's (a point stamped ``b`` covers ``[b, b + step)``)."""
    start = str(end_ms - MINUTES * 60_000 + 2_500)
    for metric in HISTORY_METRICS:
        for step in ("10s", "20s"):
            a = _history(embedded, "sim-00001", metric, start=start, end=str(end_ms), step=step)
            b = _history(tsdb, "sim-00001", metric, start=start, end=str(end_ms), step=step)
            assert len(a["series"][0]["points"]) >= 60
            _compare(metric, a, b, bands=True)


@pytest.mark.parametrize(
    ("step", "limit", "spacing"), [("60s", "7", 60_000), (None, "50", int(INTERVAL_S * 1000))]
)
def test_same_paging(
    embedded: LiveServer, tsdb: LiveServer, end_ms: int, step: str | None, limit: str, spacing: int
) -> None:
    """A history read in small pages (per-minute points, and raw samples): the same points,
    page after page, whatever the page boundaries."""
    start = end_ms - MINUTES * 60_000
    for srv in (embedded, tsdb):
        points: list[int] = []
        cursor: str | None = None
        for _ in range(100):
            params = {"start": str(start), "end": str(end_ms - 1), "limit": limit}
            if step:
                params["step"] = step
            if cursor:
                params["cursor"] = cursor
            page = _history(srv, "sim-00000", "cpu_busy_percent", **params)
            got = [p["ts_ms"] for p in page["series"][0]["points"]]
            assert len(got) <= int(limit)
            points += got
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert points == list(range(start, end_ms, spacing)), srv.url


def test_same_processes(embedded: LiveServer, tsdb: LiveServer, end_ms: int) -> None:
    host = "/hosts/sim-00001/processes"
    assert get(embedded, host) == get(tsdb, host)
    at = str(end_ms - 7 * 60_000 + 1234)
    assert get(embedded, host, at=at) == get(tsdb, host, at=at)
    start = str(end_ms - MINUTES * 60_000)
    a = get(embedded, f"{host}/history", start=start, end=str(end_ms))
    b = get(tsdb, f"{host}/history", start=start, end=str(end_ms))
    assert len(a["snapshots"]) == MINUTES * 2 and a == b


def test_tsdb_down_answers_503_and_not_ready(tmp_path: Path) -> None:
    """Nothing listens at the TSDB URL: ingest is refused with 503 + Retry-After (the agent
    keeps the request and sends it again), readiness fails, a history read is 503."""
    url = f"http://127.0.0.1:{free_port()}"
    with LiveServer(tmp_path / "server", tsdb_url=url, tsdb_timeout=3) as srv:
        [req] = fleet_requests(int(time.time() * 1000))[:1]
        r = httpx.post(
            f"{srv.url}/api/v1/ingest",
            content=codec.encode(req, encoding="gzip"),
            headers={**PB, **srv.agent_headers(req.batches[0].host.host_id)},
            timeout=60,
        )
        assert r.status_code == 503 and r.headers["retry-after"].isdigit(), r.text
        assert "nothing was stored" in r.json()["detail"]
        assert httpx.get(f"{srv.url}/api/v1/ready", timeout=30).status_code == 503
        r = httpx.get(
            f"{srv.url}/api/v1/hosts/sim-00000/metrics/cpu_busy_percent/history",
            headers=srv.headers("viewer"),
            timeout=30,
        )
        assert r.status_code == 503 and "Retry-After" in r.headers, r.text
