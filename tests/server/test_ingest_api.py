"""Ingest over real HTTP into the real store: round trips, idempotency, and every refusal leaves
the store exactly as it was."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import zstandard
from google.protobuf import json_format
from wire import batch, now_ms, request

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.testing import Clock, LiveServer
from hostpulse.store.types import StoreStats

PB = "application/x-protobuf"
FS = (("device", "/dev/sda1"), ("mountpoint", "/"))
SDA = (("device", "sda"),)


def post(
    srv: LiveServer,
    body: bytes,
    content_type: str = PB,
    encoding: str | None = "gzip",
    headers: dict[str, str] | None = None,
    *,
    host: str,
) -> httpx.Response:
    """POST as the agent of ``host`` (its own enrolled key)."""
    h = {"content-type": content_type, **srv.agent_headers(host)}
    if encoding:
        h["content-encoding"] = encoding
    h.update(headers or {})
    return httpx.post(f"{srv.url}/api/v1/ingest", content=body, headers=h, timeout=30)


def stats(srv: LiveServer) -> tuple[int, int, int, int, int]:
    """What the store holds (hosts, series, raw samples, rollup points); bytes on disk are left
    out: the write-ahead log records a resent request before finding it is a duplicate."""
    s: StoreStats = srv.call(srv.store.stats())
    return (s.hosts, s.series, s.raw_samples, s.minute_points, s.hour_points)


def sample_request(host_id: str, t0: int, n: int = 3) -> IngestRequest:
    snaps = [
        (
            t0 + i * 5000,
            {
                ("cpu_busy_percent", ()): 10.5 + i,
                ("filesystem_usage_percent", FS): 42.25 + i / 8,
                ("disk_read_bytes_per_second", SDA): 1e6 * (i + 1) + 0.125,
            },
        )
        for i in range(n)
    ]
    return request(batch(host_id, snaps))


def history(srv: LiveServer, host: str, metric: str, **params: str) -> dict[str, object]:
    r = httpx.get(
        f"{srv.url}/api/v1/hosts/{host}/metrics/{metric}/history",
        params=params,
        headers=srv.headers("viewer"),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


@pytest.mark.parametrize(
    ("as_json", "encoding"),
    [(False, "gzip"), (False, "zstd"), (False, "identity"), (True, "gzip"), (True, "identity")],
)
def test_round_trip_current_and_history(server: LiveServer, as_json: bool, encoding: str) -> None:
    t0 = now_ms() - 12_000
    req = sample_request("rt-host", t0)
    body = codec.encode(req, json=as_json, encoding=encoding)
    ctype = "application/json" if as_json else PB
    r = post(server, body, ctype, None if encoding == "identity" else encoding, host="rt-host")
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted_samples": 9, "duplicate_samples": 0}

    cur = httpx.get(
        f"{server.url}/api/v1/hosts/rt-host/current", headers=server.headers("viewer"), timeout=10
    ).json()
    got = {
        (v["metric"], tuple(sorted(v["labels"].items()))): (v["ts_ms"], v["value"])
        for v in cur["values"]
    }
    last = t0 + 10_000
    assert got[("cpu_busy_percent", ())] == (last, 12.5)
    assert got[("filesystem_usage_percent", tuple(sorted(FS)))] == (last, 42.5)
    assert got[("disk_read_bytes_per_second", SDA)] == (last, 3e6 + 0.125)
    assert cur["host"]["hostname"] == "rt-host.example"
    assert cur["host"]["status"] == "online"

    h = history(
        server, "rt-host", "filesystem_usage_percent", start=str(t0 - 1), end=str(t0 + 20_000)
    )
    assert h["tier"] == "raw"
    (series,) = h["series"]  # type: ignore[misc]
    assert series["labels"] == dict(FS)
    assert [(p["ts_ms"], p["value"]) for p in series["points"]] == [
        (t0, 42.25),
        (t0 + 5000, 42.375),
        (t0 + 10_000, 42.5),
    ]


def test_json_body_in_protobuf_json_mapping(server: LiveServer) -> None:
    t = now_ms() - 1000
    doc = {
        "batches": [
            {
                "host": {"hostId": "json-host", "hostname": "j", "intervalSeconds": 5},
                "series": [{"metric": "memory_usage_percent"}],
                "snapshots": [{"timestampMs": str(t), "seriesIndex": [0], "values": [55.5]}],
            }
        ]
    }
    r = post(
        server,
        json.dumps(doc).encode(),
        "application/json; charset=utf-8",
        None,
        host="json-host",
    )
    assert r.status_code == 200, r.text
    h = history(server, "json-host", "memory_usage_percent", start=str(t - 1000))
    assert h["series"][0]["points"][0]["value"] == 55.5  # type: ignore[index]


def test_resent_batch_stores_nothing_twice(server: LiveServer) -> None:
    req = sample_request("dup-host", now_ms() - 30_000)
    body = codec.encode(req)
    first = post(server, body, host="dup-host")
    assert first.json() == {"accepted_samples": 9, "duplicate_samples": 0}
    before = stats(server)
    again = post(server, body, host="dup-host")
    assert again.status_code == 200
    assert again.json() == {"accepted_samples": 0, "duplicate_samples": 9}
    assert stats(server) == before
    h = history(server, "dup-host", "cpu_busy_percent", start="now-5m")
    assert len(h["series"][0]["points"]) == 3  # type: ignore[index]


def _bomb() -> bytes:
    return gzip.compress(b"\0" * (80 * 1024 * 1024), compresslevel=9)  # ~80 KB on the wire


def _nan(t: int) -> bytes:
    return codec.encode(request(batch("bad", [(t, {("cpu_busy_percent", ()): math.nan})])))


def _inf(t: int) -> bytes:
    return codec.encode(request(batch("bad", [(t, {("cpu_busy_percent", ()): -math.inf})])))


def _future(t: int) -> bytes:
    return codec.encode(request(batch("bad", [(t + 3_600_000, {("cpu_busy_percent", ()): 1.0})])))


def _unknown_metric(t: int) -> bytes:
    return codec.encode(request(batch("bad", [(t, {("cpu_nonsense", ()): 1.0})])))


def _wrong_labels(t: int) -> bytes:
    return codec.encode(
        request(batch("bad", [(t, {("disk_busy_percent", (("disk", "sda"),)): 1.0})]))
    )


def _index_out_of_range(t: int) -> bytes:
    req = request(batch("bad", [(t, {("cpu_busy_percent", ()): 1.0})]))
    req.batches[0].snapshots[0].series_index[0] = 7
    return codec.encode(req)


def _length_mismatch(t: int) -> bytes:
    req = request(batch("bad", [(t, {("cpu_busy_percent", ()): 1.0})]))
    req.batches[0].snapshots[0].values.append(2.0)
    return codec.encode(req)


def _no_host_id(t: int) -> bytes:
    return codec.encode(request(batch("", [(t, {("cpu_busy_percent", ()): 1.0})])))


def _too_many_series(t: int) -> bytes:  # the fixture allows 300 series per host
    values = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.0 for c in range(301)}
    return codec.encode(request(batch("bad", [(t, values)])))


def _one_bad_batch_of_two(t: int) -> bytes:
    good = batch("good-host", [(t, {("cpu_busy_percent", ()): 1.0})])
    bad = batch("bad", [(t, {("cpu_busy_percent", ()): math.inf})])
    return codec.encode(request(good, bad))


def _corrupt_gzip(t: int) -> bytes:
    return codec.encode(sample_request("bad", t))[:-12]


def _zstd(t: int) -> bytes:
    return zstandard.ZstdCompressor().compress(sample_request("bad", t).SerializeToString())


def _malformed_protobuf(t: int) -> bytes:
    return gzip.compress(b"\x0a\xff\xff\xff\xff\x0f garbage")


CASES: dict[str, tuple[Callable[[int], bytes], str, str | None, int, str]] = {
    "malformed protobuf": (_malformed_protobuf, PB, "gzip", 400, "malformed protobuf"),
    "malformed JSON": (lambda t: b'{"batches": [', "application/json", None, 400, "JSON"),
    "JSON of another shape": (lambda t: b'{"hosts": []}', "application/json", None, 400, "hosts"),
    "corrupt gzip": (_corrupt_gzip, PB, "gzip", 400, "gzip"),
    # a zstd stream ends quietly where its input does: a cut body was stored as empty (200)
    "zstd cut near its end": (lambda t: _zstd(t)[:-1], PB, "zstd", 400, "zstd body is truncated"),
    "zstd cut in half": (lambda t: _zstd(t)[: len(_zstd(t)) // 2], PB, "zstd", 400, "truncated"),
    "zstd frame header only": (lambda t: _zstd(t)[:12], PB, "zstd", 400, "zstd"),
    "zstd, a second frame": (lambda t: _zstd(t) + _zstd(t + 5000), PB, "zstd", 400, "after"),
    "zstd with bytes after its frame": (lambda t: _zstd(t) + b"x" * 7, PB, "zstd", 400, "zstd"),
    "wrong content type": (lambda t: b"cpu 1", "text/plain", None, 415, "Content-Type"),
    "unknown encoding": (lambda t: codec.encode(sample_request("bad", t)), PB, "br", 415, "br"),
    "NaN": (_nan, PB, "gzip", 422, "finite"),
    "-inf": (_inf, PB, "gzip", 422, "finite"),
    "future timestamp": (_future, PB, "gzip", 422, "future"),
    "unknown metric": (_unknown_metric, PB, "gzip", 422, "cpu_nonsense"),
    "labels not in catalog": (_wrong_labels, PB, "gzip", 422, "labels"),
    "series_index out of range": (_index_out_of_range, PB, "gzip", 422, "out of range"),
    "values/index length mismatch": (_length_mismatch, PB, "gzip", 422, "series_index"),
    "empty host_id": (_no_host_id, PB, "gzip", 422, "host_id"),
    "too many series for a host": (_too_many_series, PB, "gzip", 422, "limit"),
    "one bad batch of two": (_one_bad_batch_of_two, PB, "gzip", 422, "finite"),
    "decompression bomb": (lambda t: _bomb(), PB, "gzip", 413, "decompressed"),
    "zstd bomb": (
        lambda t: zstandard.ZstdCompressor(level=3).compress(b"\0" * (80 * 1024 * 1024)),
        PB,
        "zstd",
        413,
        "decompressed",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_stores_nothing(server: LiveServer, case: str) -> None:
    # some data first, so "unchanged" is checked against a non-empty store
    base = codec.encode(sample_request("base", now_ms() - 20_000))
    assert post(server, base, host="base").status_code == 200
    before = stats(server)
    make, ctype, enc, status, reason = CASES[case]
    r = post(server, make(now_ms()), ctype, enc, host="bad")
    assert r.status_code == status, r.text
    assert reason.lower() in r.json()["detail"].lower()
    assert stats(server) == before
    listed = httpx.get(f"{server.url}/api/v1/hosts", headers=server.headers("viewer")).json()
    hosts = {h["host_id"] for h in listed}
    assert hosts == {"base"}


def test_body_over_the_size_limit_gets_413_before_decompressing(
    tmp_path: Path, clock: Clock
) -> None:
    with LiveServer(tmp_path / "d", clock, max_body_bytes=50_000) as srv:
        before = stats(srv)
        big = gzip.compress(json_format.MessageToJson(sample_request("x", now_ms(), 5)).encode())
        big += b"\0" * 60_000  # declared length over the limit
        r = post(srv, big, PB, "gzip", host="x")
        assert r.status_code == 413
        assert "limit" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is checked
            for _ in range(20):
                yield b"\0" * 10_000

        r2 = httpx.post(
            f"{srv.url}/api/v1/ingest",
            content=chunks(),
            headers={"content-type": PB, **srv.agent_headers("x")},
            timeout=30,
        )
        assert r2.status_code == 413
        assert stats(srv) == before


def test_too_many_series_counts_what_the_host_already_has(server: LiveServer) -> None:
    t = now_ms() - 10_000
    first = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.0 for c in range(250)}
    assert (
        post(server, codec.encode(request(batch("h", [(t, first)]))), host="h").status_code == 200
    )
    more = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.0 for c in range(250, 320)}
    before = stats(server)
    r = post(server, codec.encode(request(batch("h", [(t, more)]))), host="h")
    assert r.status_code == 422
    assert "320 series" in r.json()["detail"]
    assert stats(server) == before
    # the same 250 series again are fine
    again = codec.encode(request(batch("h", [(t + 5000, first)])))
    assert post(server, again, host="h").status_code == 200


def test_empty_request_is_accepted(server: LiveServer) -> None:
    r = post(server, codec.encode(IngestRequest()), host="any")
    assert r.status_code == 200
    assert r.json() == {"accepted_samples": 0, "duplicate_samples": 0}


def test_the_framework_route_behaves_like_the_fast_path(tmp_path: Path, clock: Clock) -> None:
    with LiveServer(tmp_path / "d", clock, fast_ingest=False, max_body_bytes=200_000) as srv:
        t = now_ms()
        body = codec.encode(sample_request("slow", t - 12_000), json=True)
        r = post(srv, body, "application/json", "gzip", host="slow")
        assert r.json() == {"accepted_samples": 9, "duplicate_samples": 0}
        again = post(srv, body, "application/json", "gzip", host="slow")
        assert again.json()["duplicate_samples"] == 9
        before = stats(srv)
        for case in ("NaN", "wrong content type", "decompression bomb", "malformed protobuf"):
            make, ctype, enc, status, reason = CASES[case]
            r = post(srv, make(t), ctype, enc, host="bad")
            assert r.status_code == status, (case, r.text)
            assert reason.lower() in r.json()["detail"].lower()
        r = post(srv, b"\0" * 250_000, PB, None, host="bad")
        assert r.status_code == 413
        assert stats(srv) == before


def test_concurrent_requests_cannot_both_pass_the_series_limit(server: LiveServer) -> None:
    import asyncio

    t = now_ms() - 10_000
    bodies = [
        codec.encode(
            request(
                batch(
                    "race",
                    [
                        (
                            t,
                            {
                                ("cpu_core_busy_percent", (("cpu", f"{k}-{c}"),)): 1.0
                                for c in range(200)
                            },
                        )
                    ],
                )
            )
        )
        for k in range(2)
    ]

    async def both() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            headers = {
                "content-type": PB,
                "content-encoding": "gzip",
                **server.agent_headers("race"),
            }
            rs = await asyncio.gather(
                *(client.post("/api/v1/ingest", content=b, headers=headers) for b in bodies)
            )
            return sorted(r.status_code for r in rs)

    assert asyncio.run(both()) == [200, 422]
    assert stats(server)[1] == 200  # series
