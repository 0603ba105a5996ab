"""The exporter renders the cached snapshot with catalog names, HELP and TYPE."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hostpulse.agent.collectors.base import Reading, Sample
from hostpulse.agent.exporter import Exporter, ExporterCache, SnapshotCollector
from hostpulse.agent.snapshot import HostIdentity, build_batch
from hostpulse.protocol import HostBatch


def cache_with_batch() -> ExporterCache:
    reading = Reading(
        samples=[
            Sample("cpu_time_seconds", (("cpu", "0"), ("mode", "idle")), 10.5),
            Sample("cpu_time_seconds", (("cpu", "1"), ("mode", "idle")), 11.5),
            Sample("cpu_core_busy_percent", (("cpu", "0"),), 12.0),
            Sample("filesystem_usage_percent", (("device", "/dev/sda1"), ("mountpoint", "/")), 40),
            Sample("netstat_tcp_connections", (("state", "time_wait"),), 3),
            Sample("network_receive_bytes", (("interface", 'we"ird\\'),), 5),
        ]
    )
    batch = build_batch(
        {"cpu": reading}, HostIdentity("h", platform="linux"), timestamp_ms=1, sequence=1
    )
    cache = ExporterCache()
    cache.put(batch)
    return cache


def render(cache: ExporterCache) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(cache))
    return generate_latest(registry).decode()


def test_exposition_names_types_and_labels() -> None:
    text = render(cache_with_batch())
    assert "# HELP node_cpu_time_seconds_total CPU time spent per core and mode." in text
    assert "# TYPE node_cpu_time_seconds_total counter" in text
    assert 'node_cpu_time_seconds_total{cpu="1",mode="idle"} 11.5' in text
    assert "# TYPE node_cpu_core_busy_percent gauge" in text
    assert 'node_filesystem_usage_percent{device="/dev/sda1",mountpoint="/"} 40.0' in text
    assert 'node_netstat_tcp_connections{state="time_wait"} 3.0' in text
    assert 'node_network_receive_bytes_total{interface="we\\"ird\\\\"} 5.0' in text


def test_promtool_accepts_the_exposition() -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=render(cache_with_batch()),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_empty_cache_serves_nothing() -> None:
    assert render(ExporterCache()) == ""


def test_http_server_serves_the_cache_and_closes() -> None:
    cache = cache_with_batch()
    exporter = Exporter(cache, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(exporter.url, timeout=5) as response:
            body = response.read().decode()
        assert response.status == 200
        assert "node_cpu_core_busy_percent" in body
        other = exporter.url.removesuffix("/metrics") + "/other"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(other, timeout=5)
        assert info.value.code == 404
        info.value.close()
    finally:
        started = time.monotonic()
        exporter.close()
        assert time.monotonic() - started < 2.0


def test_the_fast_renderer_says_what_prometheus_client_says() -> None:
    """The served text (TextRenderer) parses to exactly the families and samples that
    prometheus_client writes from SnapshotCollector, custom metrics and odd values included."""
    from prometheus_client.parser import text_string_to_metric_families

    from hostpulse.agent.exporter import TextRenderer

    odd = [
        Sample("custom:queue_depth", (("queue", "mail"),), 42),
        Sample("custom:big", (), 1.7965e09),
        Sample("cpu_load1", (), float("inf")),
    ]
    fixture = cache_with_batch().latest
    assert fixture is not None
    samples = [
        Sample(s.metric, tuple((lb.name, lb.value) for lb in s.labels), v)
        for s, v in zip(fixture.series, fixture.snapshots[-1].values, strict=True)
    ]
    batch = build_batch(
        {"cpu": Reading(samples=samples + odd)},
        HostIdentity("h", platform="linux"),
        timestamp_ms=1,
        sequence=1,
    )
    cache = ExporterCache()
    cache.put(batch)

    def parsed(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
        return [
            (f.name, f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text)
        ]

    fast = TextRenderer()
    served = fast.render(cache.latest).decode()
    assert parsed(served) == parsed(render(cache))
    assert fast.render(cache.latest).decode() == served  # the cached plan gives the same
    assert 'queue_depth{queue="mail"} 42.0' in served
    assert "cpu_load1 +Inf" in served


def test_the_renderer_follows_each_new_snapshot_and_its_series() -> None:
    """The plan made for one series table is reused only while the table is the same: a new
    interface shows at the next scrape, and one that goes away is no longer served."""
    from hostpulse.agent.exporter import TextRenderer

    identity = HostIdentity("h", platform="linux")

    def batch(values: dict[str, float], sequence: int) -> HostBatch:
        samples = [
            Sample("network_receive_bytes", (("interface", i),), v) for i, v in values.items()
        ]
        return build_batch(
            {"network": Reading(samples=samples)}, identity, timestamp_ms=1, sequence=sequence
        )

    renderer = TextRenderer()
    first = batch({"eth0": 1.0}, 1)
    text = renderer.render(first)
    assert 'node_network_receive_bytes_total{interface="eth0"} 1.0' in text.decode()
    assert renderer.render(first) is text  # the same snapshot: the same bytes
    text = renderer.render(batch({"eth0": 2.0}, 2)).decode()
    assert 'node_network_receive_bytes_total{interface="eth0"} 2.0' in text
    text = renderer.render(batch({"eth0": 3.0, "wg0": 4.0}, 3)).decode()
    assert 'node_network_receive_bytes_total{interface="wg0"} 4.0' in text
    text = renderer.render(batch({"wg0": 5.0}, 4)).decode()
    assert 'node_network_receive_bytes_total{interface="wg0"} 5.0' in text
    assert "eth0" not in text


def _raw(exporter: Exporter, request: bytes) -> bytes:
    with socket.create_connection(exporter.address, timeout=5) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_http_server_answers_only_get_and_head_of_metrics_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hostpulse.agent.exporter as exporter_module

    monkeypatch.setattr(exporter_module, "CLIENT_TIMEOUT", 0.5)
    exporter = Exporter(cache_with_batch(), "127.0.0.1", 0)
    try:
        get = _raw(exporter, b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n")
        head, _, body = get.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
        assert f"Content-Length: {len(body)}".encode() in head
        assert b"node_cpu_core_busy_percent" in body
        only_head = _raw(exporter, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert only_head.startswith(b"HTTP/1.1 200 OK") and only_head.endswith(b"\r\n\r\n")
        assert _raw(exporter, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
        assert _raw(exporter, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
        assert _raw(exporter, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400")
        long_line = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
        assert _raw(exporter, long_line).startswith(b"HTTP/1.1 414")
        many = b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"
        assert _raw(exporter, many).startswith(b"HTTP/1.1 431")
        started = time.monotonic()
        assert _raw(exporter, b"GET /metrics HTTP/1.1\r\n") == b""  # never finishes: dropped
        assert time.monotonic() - started < 5.0
    finally:
        exporter.close()
