"""The long-running agent: exporter + runner wired from settings, and a prompt stop."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from hostpulse.agent.collectors.base import Reading, Sample
from hostpulse.agent.config import load_settings
from hostpulse.agent.service import collect_once, serve
from hostpulse.agent.snapshot import batch_to_json
from hostpulse.protocol import HostBatch


class Hung:
    """A collector stuck in the kernel (hung NFS statvfs) after its first reading."""

    name = "disk_usage"

    def __init__(self) -> None:
        self.calls = 0
        self.stuck = threading.Event()
        self.release = threading.Event()

    def collect(self, now: float) -> Reading:
        self.calls += 1
        if self.calls > 1:
            self.stuck.set()
            self.release.wait(30)
        return Reading(
            samples=[Sample("filesystem_usage_percent", (("device", "d"), ("mountpoint", "/")), 1)]
        )


class Cpu:
    name = "cpu"

    def collect(self, now: float) -> Reading:
        return Reading(samples=[Sample("cpu_busy_percent", (), 42.0)])


class Sink:
    def __init__(self) -> None:
        self.batches: list[HostBatch] = []
        self.event = threading.Event()

    def put(self, batch: HostBatch) -> None:
        self.batches.append(batch)
        self.event.set()


def test_stop_is_prompt_even_with_a_hung_collector() -> None:
    settings = load_settings(
        env={},
        overrides={"interval": 1, "intervals.disk_usage": 1, "exporter.listen": "127.0.0.1:0"},
    )
    hung, sink, stop = Hung(), Sink(), threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(settings,),
        kwargs={"stop": stop, "sinks": [sink], "collectors": [Cpu(), hung]},
    )
    thread.start()
    try:
        assert hung.stuck.wait(10)
        deadline = time.monotonic() + 10
        while len(sink.batches) < 3 and time.monotonic() < deadline:
            sink.event.wait(0.5)
            sink.event.clear()
        # snapshots keep coming while disk_usage hangs, with the CPU value fresh
        assert len(sink.batches) >= 3
        assert "cpu_busy_percent" in {s.metric for s in sink.batches[-1].series}
        started = time.monotonic()
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 2.0
    finally:
        stop.set()
        hung.release.set()
        thread.join(5)


def test_exporter_serves_while_running_and_closes_on_stop() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/metrics"
    settings = load_settings(
        env={}, overrides={"interval": 1, "exporter.listen": f"127.0.0.1:{port}"}
    )
    sink, stop = Sink(), threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(settings,),
        kwargs={"stop": stop, "sinks": [sink], "collectors": [Cpu()]},
    )
    thread.start()
    try:
        assert sink.event.wait(10)
        with urllib.request.urlopen(url, timeout=5) as response:
            assert "node_cpu_busy_percent 42.0" in response.read().decode()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_collect_once_has_rates() -> None:
    settings = load_settings(env={}, overrides={"top_n": 3})
    doc = batch_to_json(collect_once(settings, pause=1.0))
    names = {m["name"] for m in doc["metrics"]}
    assert {"cpu_busy_percent", "network_receive_bytes_per_second"} <= names
    assert 0 < len(doc["processes"]["top_cpu"]) <= 3
