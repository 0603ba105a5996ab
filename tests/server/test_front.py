"""The front (``server/front.py``, served by uvicorn before the middleware stack) answers
agents' ingest and history reads exactly as the stack would: the same headers, the same
request metrics, the same results; a browser's request (with ``Origin``) and a history GET
with a body go through the stack and get the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE
from hostpulse.server.testing import LiveServer

TOKEN = "front-scrape-token-" + "x" * 20
CPU = ("cpu_busy_percent", ())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "data", metrics_token=TOKEN) as srv:
        yield srv


def _post(srv: LiveServer, host: str, ts: int, **extra: str) -> httpx.Response:
    body = request(batch(host, [(ts, {CPU: 12.5})])).SerializeToString()
    headers = {**srv.agent_headers(host), "content-type": PROTOBUF_CONTENT_TYPE, **extra}
    return httpx.post(f"{srv.url}/api/v1/ingest", content=body, headers=headers, timeout=30)


def _counts(srv: LiveServer, handler: str = "ingest") -> dict[str, float]:
    """``hostpulse_http_requests_total`` of ``handler`` by status code."""
    r = httpx.get(f"{srv.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200, r.text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "hostpulse_http_requests_total" and s.labels["handler"] == handler:
                out[s.labels["code"]] = s.value
    return out


def test_agent_and_browser_ingest_answer_alike(server: LiveServer) -> None:
    t = now_ms() - 60_000
    agent = _post(server, "front-1", t)
    browser = _post(server, "front-2", t, origin="https://elsewhere.example")
    for r in (agent, browser):
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted_samples": 1, "duplicate_samples": 0}
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-type"] == "application/json"
    again = _post(server, "front-1", t)  # resent: stored once
    assert again.json() == {"accepted_samples": 0, "duplicate_samples": 1}
    denied = httpx.post(
        f"{server.url}/api/v1/ingest",
        content=b"",
        headers={"authorization": "Bearer " + "z" * 40, "content-type": PROTOBUF_CONTENT_TYPE},
        timeout=30,
    )
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert denied.headers["x-content-type-options"] == "nosniff"
    assert _counts(server) == {"200": 3.0, "401": 1.0}


def test_history_answers_alike_through_the_front_and_the_stack(server: LiveServer) -> None:
    t = now_ms() - 60_000
    assert _post(server, "front-h", t).status_code == 200
    url = f"{server.url}/api/v1/hosts/front-h/metrics/cpu_busy_percent/history"
    params = {"start": str(t - 60_000), "end": str(t + 60_000)}
    viewer = server.headers("viewer")
    ways = {
        "front": {},
        "browser": {"origin": "https://elsewhere.example"},  # CORS: through the stack
        "with a body": {"content-length": "2"},  # the stack's body limit judges it
    }
    answers = {}
    for name, extra in ways.items():
        content = b"{}" if "content-length" in extra else None
        r = httpx.request(
            "GET", url, params=params, headers={**viewer, **extra}, content=content, timeout=30
        )
        assert r.status_code == 200, (name, r.text)
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["content-type"] == "application/json", name
        answers[name] = r.content
    assert answers["front"] == answers["browser"] == answers["with a body"]
    assert b'"value":12.5' in answers["front"]
    # refusals: the same status, body and headers as the route's
    refused = {}
    for name, extra in ways.items():
        content = b"{}" if "content-length" in extra else None
        r = httpx.request("GET", url, params=params, headers=extra, content=content, timeout=30)
        assert r.status_code == 401, (name, r.text)
        assert r.headers["www-authenticate"] == "Bearer", name
        assert r.headers["x-content-type-options"] == "nosniff", name
        refused[name] = r.content
    assert refused["front"] == refused["browser"] == refused["with a body"]
    # every one counted once, by its status, under the same handler as the route's
    assert _counts(server, "hosts") == {"200": 3.0, "401": 3.0}
