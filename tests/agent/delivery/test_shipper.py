"""Shipper building blocks: backoff, Retry-After, the ingest URL, request building and the
self-metrics; the HTTP behaviour is in tests/agent/delivery/."""

from __future__ import annotations

import random
import socket
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from hostpulse import catalog
from hostpulse.agent.delivery.record import decode_record, encode_record
from hostpulse.agent.delivery.retry import Backoff, jitter_after, parse_retry_after
from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper, build_request
from hostpulse.agent.delivery.spool import Spool, SpooledRecord, SpoolStats
from hostpulse.agent.delivery.transport import ingest_url
from hostpulse.agent.selfmetrics import AgentCollector, DeliveryStats, LatencyTracker
from hostpulse.protocol import HostBatch, SeriesDef


def test_backoff_grows_from_min_to_max_and_is_jittered() -> None:
    b = Backoff(1.0, 60.0, random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    steps = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    for d, step in zip(delays, steps, strict=True):
        assert max(1.0, step / 2) <= d <= step
    assert delays[6] > delays[2] > delays[0]  # grows
    other = Backoff(1.0, 60.0, random.Random(2))
    assert [other.next_delay() for _ in range(10)][1:] != delays[1:]  # jittered
    b.reset()
    assert b.next_delay() == 1.0


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("2", now) == 2.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert parse_retry_after(past, now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    rng = random.Random(3)
    assert all(2.0 <= jitter_after(2.0, rng) <= 2.2 for _ in range(100))


def test_ingest_url() -> None:
    assert ingest_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/api/v1/ingest"
    assert ingest_url("https://mon.example/") == "https://mon.example/api/v1/ingest"
    assert ingest_url("https://mon.example/hp") == "https://mon.example/hp/api/v1/ingest"
    assert ingest_url("http://h/api/v1/ingest") == "http://h/api/v1/ingest"
    with pytest.raises(ValueError, match="ftp://x"):
        ingest_url("ftp://x")


def _batch(host: str, metrics: list[str], ts: int) -> HostBatch:
    b = HostBatch()
    b.host.host_id = host
    b.series.extend(SeriesDef(metric=m) for m in metrics)
    s = b.snapshots.add()
    s.timestamp_ms = ts
    s.series_index.extend(range(len(metrics)))
    s.values.extend(float(i) for i in range(len(metrics)))
    return b


def test_snapshots_sharing_a_series_table_are_merged_in_order() -> None:
    recs = [
        SpooledRecord(1, 0, encode_record(_batch("a", ["cpu_busy_percent"], 1))),
        SpooledRecord(2, 0, encode_record(_batch("a", ["cpu_busy_percent"], 2))),
        SpooledRecord(3, 0, encode_record(_batch("b", ["cpu_busy_percent"], 3))),
        SpooledRecord(4, 0, encode_record(_batch("a", ["memory_used_bytes"], 4))),
        SpooledRecord(5, 0, encode_record(_batch("a", ["cpu_busy_percent"], 5))),
    ]
    req = build_request(recs)
    got = [(b.host.host_id, [s.timestamp_ms for s in b.snapshots]) for b in req.batches]
    assert got == [("a", [1, 2, 5]), ("b", [3]), ("a", [4])]
    assert decode_record(recs[0].payload) == _batch("a", ["cpu_busy_percent"], 1)


def test_self_metrics_are_catalog_series() -> None:
    lat = LatencyTracker()
    lat.observe(0.25)
    stats = DeliveryStats.from_spool(
        SpoolStats(3, 4096, 1, {"queued": 10, "sent": 6, "dropped_size": 1, "retried": 2}), lat
    )
    reading = AgentCollector(lambda: stats).collect(0.0)
    values = {(s.key, s.labels): s.value for s in reading.samples}
    for key, labels in values:
        m = catalog.get(key)
        assert m.collector == "agent"
        assert tuple(n for n, _ in labels) == m.labels
    assert values[("agent_queued_snapshots", ())] == 10
    assert values[("agent_dropped_snapshots", (("reason", "size"),))] == 1
    assert values[("agent_spool_snapshots", ())] == 3
    assert values[("agent_send_latency_seconds", ())] == 0.25


def _refused_url() -> str:
    """A loopback port where nothing listens: connections are refused, for real."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_consecutive_failures_wait_growing_jittered_delays(tmp_path: Path) -> None:
    delays: list[float] = []
    done = threading.Event()

    def sleep(seconds: float) -> None:  # records the delay instead of waiting it
        delays.append(seconds)
        if len(delays) >= 8:
            done.set()
            threading.Event().wait(0.01)

    spool = Spool(SpoolSettings(dir=str(tmp_path)))
    shipper = Shipper(
        ShipperSettings(server=_refused_url()), spool, rng=random.Random(5), sleep=sleep
    )
    shipper.put(_batch("a", ["cpu_busy_percent"], 1))
    shipper.start()
    assert done.wait(10)
    shipper.close(2.0)
    assert delays[0] == 1.0
    for d, step in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60], strict=False):
        assert max(1.0, step / 2) <= d <= step
    assert len(set(delays[:8])) == 8
    with Spool(SpoolSettings(dir=str(tmp_path))) as reopened:
        stats = reopened.stats()
        assert stats.pending_records == 1  # still there for the next start
        assert stats.counters["retried"] >= 8
