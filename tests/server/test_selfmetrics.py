"""GET /metrics: the server's own metrics, read by a real Prometheus and checked by promtool."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_process import run_cli
from prometheus_client.parser import text_string_to_metric_families
from promserver import Prometheus, wait_until
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE
from hostpulse.server.testing import LiveServer

TOKEN = "scrape-" + "x" * 24
CPU = ("cpu_busy_percent", ())
MEM = ("memory_usage_percent", ())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "data", metrics_token=TOKEN) as srv:
        yield srv


def scrape(
    srv: LiveServer, token: str = TOKEN
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{srv.url}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def push(srv: LiveServer, host: str, n: int, end_ms: int | None = None) -> httpx.Response:
    ts = (end_ms or now_ms()) - n * 5000
    body = request(batch(host, [(ts + i * 5000, {CPU: 10.0 + i, MEM: 40.0}) for i in range(n)]))
    return httpx.post(
        f"{srv.url}/api/v1/ingest",
        content=body.SerializeToString(),
        headers={**srv.agent_headers(host), "content-type": PROTOBUF_CONTENT_TYPE},
        timeout=10,
    )


def test_metrics_needs_the_scrape_token_or_a_viewer(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
    wrong = {"authorization": "Bearer " + "y" * 30}
    assert httpx.get(f"{server.url}/metrics", headers=wrong, timeout=10).status_code == 401
    agent = server.agent_headers("web-1")
    assert httpx.get(f"{server.url}/metrics", headers=agent, timeout=10).status_code == 403
    viewer = httpx.get(f"{server.url}/metrics", headers=server.headers("viewer"), timeout=10)
    assert viewer.status_code == 200
    assert "hostpulse_build_info" in viewer.text and "<html" not in viewer.text.lower()


def test_metrics_count_what_the_server_did(server: LiveServer) -> None:
    before = scrape(server)
    assert before[("hostpulse_hosts", (("status", "online"),))] == 0
    end = now_ms()
    assert push(server, "web-1", 3, end).status_code == 200
    assert push(server, "web-1", 3, end).status_code == 200  # the same samples: duplicates
    bad = httpx.post(
        f"{server.url}/api/v1/ingest",
        content=b"not protobuf",
        headers={**server.agent_headers("web-1"), "content-type": PROTOBUF_CONTENT_TYPE},
        timeout=10,
    )
    assert bad.status_code == 400
    unauth = httpx.post(f"{server.url}/api/v1/ingest", content=b"", timeout=10)
    assert unauth.status_code == 401
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("hostpulse_ingest_requests_total", outcome="stored") == 2
    assert delta("hostpulse_ingest_requests_total", outcome="rejected") == 1
    assert delta("hostpulse_ingest_requests_total", outcome="denied") == 1
    assert delta("hostpulse_ingest_samples_total", outcome="accepted") == 6
    assert delta("hostpulse_ingest_samples_total", outcome="duplicate") == 6
    assert delta("hostpulse_ingest_request_duration_seconds_count") == 4
    assert delta("hostpulse_http_requests_total", handler="ingest", code="200") == 2
    assert after[("hostpulse_hosts", (("status", "online"),))] == 1
    assert after[("hostpulse_store_wal_bytes", ())] > 0
    assert after[("hostpulse_store_head_bytes", ())] > 0
    assert ("hostpulse_store_compaction_lag_seconds", ()) in after
    assert after[("hostpulse_ingest_admission_pending_requests", ())] == 0
    assert after[("hostpulse_live_clients", ())] == 0
    assert after[("hostpulse_alert_evaluations_total", (("trigger", "sample"),))] >= 6
    for tier in ("raw", "1m", "1h"):
        assert ("hostpulse_store_tier_bytes", (("tier", tier),)) in after
    assert after[("hostpulse_process_resident_memory_bytes", ())] > 0
    # a path nobody routes does not become a label of its own
    httpx.get(f"{server.url}/api/v1/no-such-thing-{now_ms()}", timeout=10)
    last = scrape(server)
    handlers = {dict(k[1]).get("handler") for k in last if k[0] == "hostpulse_http_requests_total"}
    assert "other_api" in handlers and not any(h and "no-such" in h for h in handlers)


def test_promtool_finds_nothing_to_complain_about(server: LiveServer) -> None:
    assert push(server, "web-1", 2).status_code == 200
    text = httpx.get(
        f"{server.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        check.stdout + check.stderr
    )


@pytest.mark.slow
def test_prometheus_scrapes_the_server_with_the_token(server: LiveServer, tmp_path: Path) -> None:
    token_file = tmp_path / "scrape-token"
    token_file.write_text(TOKEN)
    target = server.url.removeprefix("http://")
    job = {
        "job_name": "hostpulse-server",
        "authorization": {"credentials_file": str(token_file)},
        "static_configs": [{"targets": [target]}],
    }
    assert push(server, "web-1", 4).status_code == 200
    with Prometheus(tmp_path / "prom", [job]) as prom:
        wait_until(
            lambda: prom.targets_up().get("hostpulse-server") == "up", 30, "the scrape to succeed"
        )
        accepted = 'hostpulse_ingest_samples_total{outcome="accepted"}'
        wait_until(lambda: prom.query(accepted), 30, "the first scrape's samples")
        # 4 snapshots of 2 series
        assert [r["value"][1] for r in prom.query(accepted)] == ["8"]
        buckets = "sum by (le) (hostpulse_ingest_request_duration_seconds_bucket)"
        p90 = f"histogram_quantile(0.9, {buckets})"
        hist = prom.query(p90)
        assert hist and float(hist[0]["value"][1]) > 0


def test_a_short_scrape_token_stops_the_server_naming_the_key(tmp_path: Path) -> None:
    result = run_cli(
        ["server", "--port", "0", "--data-dir", str(tmp_path), "--metrics-token", "short"]
    )
    assert result.returncode == 2
    assert "HOSTPULSE_METRICS_TOKEN (metrics_token)" in result.stderr
    assert "at least 16 characters" in result.stderr


def test_compaction_lag_counts_a_back_fill_until_it_is_compacted(server: LiveServer) -> None:
    lag = "hostpulse_store_compaction_lag_seconds", ()
    assert push(server, "web-1", 12).status_code == 200
    server.call(server.store.maintain(now_ms()))  # the watermark is now ~11 minutes old
    assert 0 < scrape(server)[lag] < 3600
    # two days of history pushed late: below the watermark, only in memory until compacted
    day_ago = now_ms() - 2 * 86_400_000
    assert push(server, "web-1", 12, end_ms=day_ago).status_code == 200
    assert scrape(server)[lag] > 2 * 86_400 - 600
    server.call(server.store.maintain(now_ms()))
    assert 0 < scrape(server)[lag] < 3600
