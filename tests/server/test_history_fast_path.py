"""``GET .../history`` answered by ``HistoryFastPath`` is answered as the framework route
answers it: the same status, body and headers for good requests, paging, every refusal and
every authentication failure. The route is reached with one extra parameter it ignores (the
fast path leaves any request it does not know entirely to the route)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from test_query_api import ingest
from wire import batch, now_ms, request

from hostpulse.server.api import metrics
from hostpulse.server.testing import LiveServer

BASE = "/api/v1/hosts/h/metrics/disk_busy_percent/history"


def _both(
    srv: LiveServer, path: str, params: dict[str, Any], headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    fast = httpx.get(f"{srv.url}{path}", params=params, headers=headers, timeout=30)
    route = httpx.get(
        f"{srv.url}{path}", params={**params, "unused": "1"}, headers=headers, timeout=30
    )
    return fast, route


def _same(fast: httpx.Response, route: httpx.Response, moving: bool = False) -> None:
    """``moving``: a range that ends "now", a few ms apart between the two requests."""
    assert fast.status_code == route.status_code, (fast.text, route.text)
    if moving and fast.status_code == 200:
        a, b = fast.json(), route.json()
        assert abs(a.pop("end_ms") - b.pop("end_ms")) < 60_000
        assert abs(a.pop("start_ms") - b.pop("start_ms")) < 60_000
        assert a == b
    else:
        assert fast.content == route.content
    for name in ("content-type", "www-authenticate", "retry-after"):
        assert fast.headers.get(name) == route.headers.get(name), name


def test_fast_path_answers_as_the_route(server: LiveServer, monkeypatch: Any) -> None:
    t0 = now_ms() - 600_000
    snaps = [
        (
            t0 + i * 5000,
            {
                ("disk_busy_percent", (("device", "sda"),)): float(i),
                ("disk_busy_percent", (("device", "sdb"),)): 1000.5 + i,
            },
        )
        for i in range(100)
    ]
    ingest(server, request(batch("h", snaps)))
    taken = []
    params_of = metrics._params
    monkeypatch.setattr(metrics, "_params", lambda q: taken.append(q) or params_of(q))
    viewer = server.headers("viewer")
    window = {"start": str(t0), "end": str(t0 + 500_000)}
    cases: list[tuple[str, dict[str, Any], int]] = [
        (BASE, {}, 200),
        (BASE, window, 200),
        (BASE, {**window, "step": "1m", "agg": "max"}, 200),
        (BASE, {**window, "tier": "1m", "agg": "last", "label.device": "sdb"}, 200),
        (BASE, {**window, "limit": "30", "label.device": "sda"}, 200),
        (BASE, {"start": "now-1h", "end": "now"}, 200),
        (BASE, {"start": "yesterday"}, 422),
        (BASE, {"step": "fast"}, 422),
        (BASE, {"step": "0s"}, 422),
        (BASE, {"start": "now", "end": "now-1h"}, 422),
        (BASE, {"label.mountpoint": "/"}, 422),
        (BASE, {"cursor": "x12"}, 422),
        ("/api/v1/hosts/nope/metrics/disk_busy_percent/history", {}, 404),
        ("/api/v1/hosts/h/metrics/cpu_nonsense/history", {}, 404),
    ]
    for path, params, status in cases:
        fast, route = _both(server, path, params, viewer)
        assert fast.status_code == status, (params, fast.text)
        _same(fast, route, moving=not str(params.get("end", "")).isdigit())
    # paging: the cursor of a fast answer, followed on both
    params = {**window, "limit": "30", "label.device": "sda"}
    for _ in range(5):
        fast, route = _both(server, BASE, params, viewer)
        _same(fast, route)
        cursor = fast.json()["next_cursor"]
        if cursor is None:
            break
        params["cursor"] = cursor
    else:
        pytest.fail("paging did not end")
    assert len(taken) >= 2 * (len(cases) + 4)  # every request above was looked at first

    # who may ask: nobody signed in, a bad token, an agent key; all refused alike
    agent = server.agent_headers("h")
    for headers in ({}, {"authorization": "Bearer nonsense"}, {"authorization": "Basic x"}, agent):
        fast, route = _both(server, BASE, {}, headers)
        assert fast.status_code in (401, 403), fast.text
        _same(fast, route)


def test_requests_it_does_not_know_go_to_the_route(server: LiveServer) -> None:
    ingest(server, request(batch("h", [(now_ms() - 1000, {("cpu_busy_percent", ()): 1.0})])))
    base = f"{server.url}/api/v1/hosts/h/metrics/cpu_busy_percent/history"
    viewer = server.headers("viewer")
    for query, status in (
        ("agg=median", 422),
        ("limit=0", 422),
        ("limit=100001", 422),
        ("limit=ten", 422),
        ("tier=5m", 422),
        ("start=now-1h&start=now-2h", 200),
    ):
        r = httpx.get(f"{base}?{query}", headers=viewer, timeout=30)
        assert r.status_code == status, (query, r.text)
    assert metrics._params(b"agg=median") is None
    assert metrics._params(b"start=1&start=2") is None
    assert metrics._params(b"limit=%2B5") is None
    got = metrics._params(b"limit=5&label.device=sda&tier=1h")
    assert got is not None and got["limit"] == 5 and got["labels"] == {"device": "sda"}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "start=1&end=2&step=60s&label.device=sda",
        "a=&=b&&c&d=1=2&",
        "label.device=s%64a&step=1+m",
        "x;y=1&x=2",
    ],
)
def test_fast_path_reads_a_query_as_parse_qsl(query: str) -> None:
    assert metrics._pairs(query) == parse_qsl(query, keep_blank_values=True)
