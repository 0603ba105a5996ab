"""Query API over real HTTP: host status, history (tiers, labels, paging), area shortcuts,
processes, health, readiness and the API docs."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from wire import batch, now_ms, request

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.api.models import (
    MAX_BATCH_HOSTS,
    MAX_BATCH_SERIES,
    CurrentBatch,
    CurrentSnapshot,
    History,
)
from hostpulse.server.testing import Clock, LiveServer
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

PB = {"content-type": "application/x-protobuf", "content-encoding": "gzip"}


def ingest(srv: LiveServer, req: IngestRequest) -> None:
    """Each host's batches with that host's own agent key."""
    by_host: dict[str, IngestRequest] = {}
    for b in req.batches:
        by_host.setdefault(b.host.host_id, IngestRequest()).batches.append(b)
    for host, part in by_host.items():
        headers = {**PB, **srv.agent_headers(host)}
        r = httpx.post(
            f"{srv.url}/api/v1/ingest", content=codec.encode(part), headers=headers, timeout=60
        )
        assert r.status_code == 200, r.text


def get(srv: LiveServer, path: str, status: int = 200, **params: Any) -> Any:
    """GET as a signed-in viewer."""
    r = httpx.get(
        f"{srv.url}/api/v1{path}", params=params, headers=srv.headers("viewer"), timeout=30
    )
    assert r.status_code == status, r.text
    return r.json()


def test_host_status_follows_last_seen_and_interval(server: LiveServer, clock: Clock) -> None:
    ingest(server, request(batch("h1", [(now_ms() - 1000, {("cpu_busy_percent", ()): 3.0})])))
    [h] = get(server, "/hosts")
    assert (h["host_id"], h["status"], h["interval_seconds"]) == ("h1", "online", 5.0)
    assert h["os"] == "Linux" and h["logical_cores"] == 4 and h["labels"] == {"env": "test"}
    # the rule comes with the host, so the dashboard applies the server's factors, not its own
    assert (h["online_within_seconds"], h["stale_within_seconds"]) == (10.0, 50.0)
    clock.advance(15)  # 16 s: more than 2 intervals, less than 10
    assert get(server, "/hosts/h1")["status"] == "stale"
    clock.advance(40)  # 56 s: more than 10 intervals
    assert get(server, "/hosts/h1")["status"] == "offline"
    ingest(server, request(batch("h1", [(int(clock() * 1000), {("cpu_busy_percent", ()): 4.0})])))
    assert get(server, "/hosts/h1")["status"] == "online"


def test_a_long_host_list_goes_gzipped_to_a_client_that_accepts_it(server: LiveServer) -> None:
    """Issue 15: 10,000 hosts are 4.2 MB of JSON, the fleet page's first request."""
    t = now_ms() - 1000
    hosts = [f"host-{i:03d}" for i in range(60)]  # ~430 bytes each: past the 16 KB threshold
    ingest(server, request(*(batch(h, [(t, {("cpu_busy_percent", ()): 1.0})]) for h in hosts)))
    url, auth = f"{server.url}/api/v1/hosts", server.headers("viewer")
    zipped = httpx.get(url, headers={**auth, "accept-encoding": "gzip"}, timeout=30)
    plain = httpx.get(url, headers={**auth, "accept-encoding": "identity"}, timeout=30)
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert int(zipped.headers["content-length"]) * 5 < len(plain.content)
    assert [h["host_id"] for h in zipped.json()] == [h["host_id"] for h in plain.json()]
    assert sorted(h["host_id"] for h in plain.json()) == hosts


def test_history_label_filter_and_paging(server: LiveServer) -> None:
    t0 = now_ms() - 600_000
    snaps = [
        (
            t0 + i * 5000,
            {
                ("disk_busy_percent", (("device", "sda"),)): float(i),
                ("disk_busy_percent", (("device", "sdb"),)): float(1000 + i),
            },
        )
        for i in range(100)
    ]
    ingest(server, request(batch("h", snaps)))
    base = "/hosts/h/metrics/disk_busy_percent/history"
    whole = get(server, base, start=str(t0), end=str(t0 + 500_000))
    assert {tuple(s["labels"].items()) for s in whole["series"]} == {
        (("device", "sda"),),
        (("device", "sdb"),),
    }
    only = get(server, base, start=str(t0), end=str(t0 + 500_000), **{"label.device": "sda"})
    [sda] = only["series"]
    assert [p["value"] for p in sda["points"]] == [float(i) for i in range(100)]

    pages, cursor = [], None
    for _ in range(20):
        params: dict[str, Any] = {"start": str(t0), "end": str(t0 + 500_000), "limit": 30}
        params["label.device"] = "sda"
        if cursor:
            params["cursor"] = cursor
        page = get(server, base, **params)
        pages += [p["ts_ms"] for s in page["series"] for p in s["points"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [t0 + i * 5000 for i in range(100)]


def test_history_exposes_the_tier_and_switches_with_the_range(
    server: LiveServer, clock: Clock
) -> None:
    end = (now_ms() // 3_600_000 - 2) * 3_600_000  # two whole hours ago
    t0 = end - 6 * 3_600_000
    snaps = [
        (t, {("memory_usage_percent", ()): float(t // 60_000 % 50)}) for t in range(t0, end, 60_000)
    ]
    ingest(server, request(batch("h", snaps, interval=60)))
    server.call(server.store.maintain(int(clock() * 1000)))
    base = "/hosts/h/metrics/memory_usage_percent/history"
    short = get(server, base, start=str(end - 1_800_000), end=str(end))
    History.model_validate(short)  # the documented shape
    assert short["tier"] == "raw"
    assert len(short["series"][0]["points"]) == 30
    month = get(server, base, start="now-30d", end="now")
    assert month["tier"] in ("1m", "1h")
    month_points = month["series"][0]["points"]
    assert 0 < len(month_points) < len(snaps)
    assert all(p["min"] <= p["value"] <= p["max"] for p in month_points)
    hourly = get(server, base, start=str(t0), end=str(end), tier="1h", agg="max")
    assert hourly["tier"] == "1h" and hourly["agg"] == "max"
    assert [p["count"] for p in hourly["series"][0]["points"]] == [60] * 6
    assert {p["value"] for p in hourly["series"][0]["points"]} == {49.0}


def test_history_refuses_bad_parameters(server: LiveServer) -> None:
    ingest(server, request(batch("h", [(now_ms() - 1000, {("cpu_busy_percent", ()): 1.0})])))
    base = "/hosts/h/metrics/cpu_busy_percent/history"
    assert "start" in get(server, base, 422, start="yesterday")["detail"]
    assert "step" in get(server, base, 422, step="fast")["detail"]
    assert "after end" in get(server, base, 422, start="now", end="now-1h")["detail"]
    assert "label.device" in get(server, base, 422, **{"label.device": "sda"})["detail"]
    get(server, base, 422, agg="median")
    assert "cpu_nonsense" in get(server, "/hosts/h/metrics/cpu_nonsense/history", 404)["detail"]
    assert "nope" in get(server, "/hosts/nope/metrics/cpu_busy_percent/history", 404)["detail"]
    get(server, "/hosts/nope", 404)
    get(server, "/metrics/cpu", 404, host="nope")
    get(server, "/metrics/gpu", 422, host="h")
    # values past any real time or duration are refused, not a 500 from overflowing arithmetic
    for bad in ({"step": "inf"}, {"step": "1e300"}, {"start": "now-1e300"}):
        get(server, base, 422, **bad)
    assert "out of range" in get(server, base, 422, end="1" + "0" * 30)["detail"]
    assert "out of range" in get(server, base, 422, end="99999999999999999")["detail"]


def _sim_request(ts_ms: int) -> tuple[SimHost, IngestRequest]:
    host = SimHost(make_profile(3))
    hb = host_batch(host, np.array([ts_ms - 60_000, ts_ms], dtype=np.int64), 5.0, process_every=1)
    return host, IngestRequest(batches=[hb])


def test_area_shortcuts_give_current_values_by_area(server: LiveServer) -> None:
    t = now_ms() - 1000
    host, req = _sim_request(t)
    ingest(server, req)
    hid = host.host_id
    cpu = get(server, "/metrics/cpu", host=hid)
    assert cpu["ts_ms"] == t and "cpu_busy_percent" in cpu["values"]
    by = {tuple(g["by"]): g["rows"] for g in cpu["groups"]}
    assert len(by[("cpu",)]) == host.profile.cores
    assert {r["labels"]["mode"] for r in by[("mode",)]} >= {"user", "system", "idle", "iowait"}
    mem = get(server, "/metrics/memory", host=hid)
    assert mem["values"]["memory_total_bytes"] == host.profile.memory_bytes
    disk = get(server, "/metrics/disk", host=hid)
    fs_rows = {tuple(g["by"]): g["rows"] for g in disk["groups"]}[("device", "mountpoint")]
    assert {r["labels"]["mountpoint"] for r in fs_rows} == {
        m for _, m, _ in host.profile.filesystems
    }
    assert all(0 <= r["values"]["filesystem_usage_percent"] <= 100 for r in fs_rows)
    net = get(server, "/metrics/network", host=hid)
    names = {tuple(g["by"]): g["rows"] for g in net["groups"]}
    assert {r["labels"]["interface"] for r in names[("interface",)]} == {
        i for i, _ in host.profile.interfaces
    }
    assert "established" in {r["labels"]["state"] for r in names[("state",)]}
    procs = get(server, "/metrics/processes", host=hid)
    assert procs["values"]["processes_all"] > 0
    assert procs["processes"]["ts_ms"] == t
    assert procs["processes"]["top_cpu"][0]["name"] == "postgres"


def test_processes_at_a_time_and_history(server: LiveServer) -> None:
    t = now_ms() - 1000
    host, req = _sim_request(t)
    ingest(server, req)
    hid = host.host_id
    latest = get(server, f"/hosts/{hid}/processes")
    assert latest["ts_ms"] == t and len(latest["top_memory"]) == 5
    earlier = get(server, f"/hosts/{hid}/processes", at=str(t - 1000))
    assert earlier["ts_ms"] == t - 60_000
    get(server, f"/hosts/{hid}/processes", 404, at=str(t - 3_600_000))
    hist = get(server, f"/hosts/{hid}/processes/history", start=str(t - 120_000), end=str(t))
    assert [s["ts_ms"] for s in hist["snapshots"]] == [t - 60_000, t]


def test_current_snapshot_can_be_narrowed_to_metrics(server: LiveServer) -> None:
    t = now_ms() - 1000
    host, req = _sim_request(t)
    ingest(server, req)
    cur = get(server, f"/hosts/{host.host_id}/current", metric=["cpu_load1", "memory_used_bytes"])
    assert {v["metric"] for v in cur["values"]} == {"cpu_load1", "memory_used_bytes"}
    assert (
        CurrentSnapshot.model_validate(cur).model_dump(mode="json") == cur
    )  # the documented schema
    series = get(server, f"/hosts/{host.host_id}/series", metric="disk_busy_percent")
    assert {s["labels"]["device"] for s in series} == set(host.profile.devices)
    # several hosts in one request: what the one-host route answers, in the order asked
    url = f"{server.url}/api/v1/current"
    body = {"hosts": ["nope", host.host_id], "metrics": ["cpu_load1", "memory_used_bytes"]}
    r = httpx.post(url, json=body, headers=server.headers("viewer"), timeout=30)
    assert r.status_code == 200, r.text
    assert CurrentBatch.model_validate(r.json()).model_dump(mode="json") == r.json()
    gone, one = r.json()["results"]
    assert gone == {"host_id": "nope", "status": 404, "error": "unknown host 'nope'"}
    assert one == cur
    everything = httpx.post(
        url, json={"hosts": [host.host_id]}, headers=server.headers("viewer"), timeout=30
    ).json()["results"][0]
    assert everything == get(server, f"/hosts/{host.host_id}/current")
    too_many = {"hosts": ["h"] * (MAX_BATCH_HOSTS + 1)}
    for bad in (too_many, {"hosts": []}):
        r = httpx.post(url, json=bad, headers=server.headers("viewer"), timeout=30)
        assert r.status_code == 422, r.text


def test_health_ready_docs_and_openapi(server: LiveServer) -> None:
    assert get(server, "/health") == {"status": "ok"}
    assert get(server, "/ready") == {"ready": True, "detail": ""}
    for page in ("/docs", "/redoc"):
        r = httpx.get(server.url + page, timeout=10)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        # the pages work offline: every script, style and icon comes from this server
        refs = re.findall(r"""(?:src|href)\s*[=:]\s*['"]([^'"]+)['"]""", r.text)
        assert any(ref.endswith(".js") for ref in refs), refs
        for ref in refs:
            assert ref.startswith("/"), (page, ref)
            asset = httpx.get(server.url + ref, timeout=10)
            assert asset.status_code == 200 and asset.content, (page, ref)
    spec = get(server, "/openapi.json")
    paths = set(spec["paths"])
    assert {
        "/api/v1/ingest",
        "/api/v1/hosts",
        "/api/v1/hosts/{host_id}/current",
        "/api/v1/hosts/{host_id}/metrics/{metric}/history",
        "/api/v1/metrics/{area}",
        "/api/v1/hosts/{host_id}/processes",
        "/api/v1/hosts/{host_id}/processes/history",
        "/api/v1/health",
        "/api/v1/ready",
    } <= paths
    body = spec["paths"]["/api/v1/ingest"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/x-protobuf", "application/json"}
    # the API is under /api/v1; outside it only what a new host fetches before it has any
    # credential (the agent's install script and wheel: docs/install.md)
    assert {p for p in paths if not p.startswith("/api/v1/")} == {
        "/install/agent.sh",
        "/install/{filename}",
    }


def test_the_maintenance_job_rolls_data_up_in_the_background(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d", Clock(), maintenance_interval=0.2) as srv:
        end = (now_ms() // 3_600_000 - 2) * 3_600_000
        snaps = [(t, {("cpu_busy_percent", ()): 5.0}) for t in range(end - 3_600_000, end, 10_000)]
        ingest(srv, request(batch("h", snaps, interval=10)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = srv.call(srv.store.stats())
            if stats.minute_points >= 60 and stats.hour_points >= 1:
                break
            time.sleep(0.1)
        assert stats.minute_points >= 60 and stats.hour_points >= 1


def test_ready_is_503_when_the_store_is_not_usable(server: LiveServer) -> None:
    assert get(server, "/ready")["ready"] is True
    server.call(server.store.close())
    body = get(server, "/ready", 503)
    assert body["ready"] is False and body["detail"]
    assert get(server, "/health") == {"status": "ok"}


def test_history_batch_answers_what_the_one_series_route_answers(server: LiveServer) -> None:
    t0 = now_ms() - 600_000
    snaps = [
        (
            t0 + i * 5000,
            {
                ("cpu_busy_percent", ()): float(i % 7),
                ("disk_busy_percent", (("device", "sda"),)): float(i),
                ("disk_busy_percent", (("device", "sdb"),)): float(1000 + i),
            },
        )
        for i in range(100)
    ]
    ingest(server, request(batch("b1", snaps), batch("b2", snaps[:50])))
    q = {"start": t0, "end": str(t0 + 500_000), "step": "60s", "agg": "max"}
    series = [
        {"host_id": "b1", "metric": "cpu_busy_percent"},
        {"host_id": "b2", "metric": "disk_busy_percent", "labels": {"device": "sdb"}},
        {"host_id": "nope", "metric": "cpu_busy_percent"},
        {"host_id": "b1", "metric": "no_such_metric"},
        {"host_id": "b1", "metric": "cpu_busy_percent", "labels": {"device": "sda"}},
        {"host_id": "b1", "metric": "disk_busy_percent"},
    ]
    r = httpx.post(
        f"{server.url}/api/v1/history",
        json={**q, "series": series},
        headers=server.headers("viewer"),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    assert len(got) == len(series)
    single = {"start": str(t0), "end": str(t0 + 500_000), "step": "60s", "agg": "max"}
    for item, res in zip(series, got, strict=True):
        labels = {f"label.{k}": v for k, v in item.get("labels", {}).items()}
        path = f"/hosts/{item['host_id']}/metrics/{item['metric']}/history"
        r1 = httpx.get(
            f"{server.url}/api/v1{path}",
            params={**single, **labels},
            headers=server.headers("viewer"),
            timeout=30,
        )
        if r1.status_code == 200:
            assert res == r1.json()
            assert res["series"] and all(s["points"] for s in res["series"])
        else:
            assert res == {
                "host_id": item["host_id"],
                "metric": item["metric"],
                "status": r1.status_code,
                "error": r1.json()["detail"],
            }
    assert [x.get("status", 200) for x in got] == [200, 200, 404, 404, 422, 200]
    assert len(got[5]["series"]) == 2  # both disks of b1


def test_history_batch_columns_carry_the_numbers_of_the_points(server: LiveServer) -> None:
    t0 = now_ms() - 3_600_000
    snaps = [
        (
            t0 + i * 5000,
            {
                ("cpu_busy_percent", ()): 10.0 + (i % 13) * 0.37,
                ("disk_busy_percent", (("device", "sda"),)): float(i),
                ("disk_busy_percent", (("device", "sdb"),)): float(1000 + i),
            },
        )
        for i in range(400)
    ]
    ingest(server, request(batch("c1", snaps)))
    series = [
        {"host_id": "c1", "metric": "cpu_busy_percent"},
        {"host_id": "c1", "metric": "disk_busy_percent"},
        {"host_id": "nope", "metric": "cpu_busy_percent"},
    ]
    url = f"{server.url}/api/v1/history"
    q = {"start": t0, "end": t0 + 2_000_000, "step": "5s", "series": series}

    def post(body: dict[str, Any], encoding: str = "gzip") -> httpx.Response:
        headers = {**server.headers("viewer"), "accept-encoding": encoding}
        r = httpx.post(url, json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return r

    points = post(q).json()["results"]
    # asked out of order: in the order of the points
    r = post({**q, "columns": ["max", "value", "count", "min"]})
    cols = r.json()["results"]
    assert [x.get("status", 200) for x in cols] == [200, 200, 404]
    assert cols[2] == points[2]
    for p, c in zip(points[:2], cols[:2], strict=True):
        assert {k: v for k, v in c.items() if k != "series"} == {
            k: v for k, v in p.items() if k != "series"
        }
        assert len(c["series"]) == len(p["series"]) > 0
        for ps, cs in zip(p["series"], c["series"], strict=True):
            assert list(cs) == ["metric", "labels", "ts_ms", "value", "min", "max", "count"]
            assert (cs["metric"], cs["labels"]) == (ps["metric"], ps["labels"])
            for name in ("ts_ms", "value", "min", "max", "count"):
                assert cs[name] == [pt[name] for pt in ps["points"]], name
    only = post({**q, "columns": ["value", "value"]}).json()["results"]  # once
    assert list(only[1]["series"][0]) == ["metric", "labels", "ts_ms", "value"]
    assert only[1]["series"][1]["value"] == cols[1]["series"][1]["value"]
    # a long answer goes gzipped to a client that takes it, plain to one that does not
    assert post(q).headers.get("content-encoding") == "gzip"
    plain = post(q, encoding="identity")
    assert "content-encoding" not in plain.headers
    assert plain.json()["results"] == points
    bad = httpx.post(
        url, json={**q, "columns": ["ts"]}, headers=server.headers("viewer"), timeout=30
    )
    assert bad.status_code == 422, bad.text


def test_history_batch_is_bounded_and_for_signed_in_users(server: LiveServer) -> None:
    one = {"host_id": "h", "metric": "cpu_busy_percent"}
    url = f"{server.url}/api/v1/history"
    too_many = {"series": [one] * (MAX_BATCH_SERIES + 1)}
    r = httpx.post(url, json=too_many, headers=server.headers("viewer"), timeout=30)
    assert r.status_code == 422, r.text
    r = httpx.post(url, json={"series": []}, headers=server.headers("viewer"), timeout=30)
    assert r.status_code == 422, r.text
    assert httpx.post(url, json={"series": [one]}, timeout=30).status_code == 401
    for bad in ({"step": "inf"}, {"step": 1e300}, {"end": "1" + "0" * 30}):
        r = httpx.post(url, json={"series": [one], **bad}, headers=server.headers("viewer"))
        assert r.status_code == 422, r.text
