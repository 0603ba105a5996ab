"""Retry semantics against a real, scripted HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import ssl
import time
from pathlib import Path

from delivery_helpers import (
    MakeAgent,
    Receiver,
    Step,
    keys_of,
    make_agent_fixture,  # noqa: F401
    make_batch,
    receiver_fixture,  # noqa: F401
    self_signed_cert,
)


def test_request_carries_key_protobuf_and_gzip(receiver: Receiver, make_agent: MakeAgent) -> None:
    shipper = make_agent(receiver.url).start()
    shipper.put(make_batch(1_000))
    (got,) = receiver.wait_for(1)
    assert got.headers["Authorization"] == "Bearer k-123"
    assert got.headers["Content-Type"] == "application/x-protobuf"
    assert got.headers["Content-Encoding"] == "gzip"
    assert got.timestamps() == [1_000]


def test_a_500_is_retried_with_the_same_batch_until_accepted(
    receiver: Receiver, make_agent: MakeAgent
) -> None:
    receiver.script = [Step(500), Step(502), Step(500), Step(200)]
    shipper = make_agent(receiver.url).start()
    for ts in (1_000, 2_000, 3_000):
        shipper.put(make_batch(ts))
    arrivals = receiver.wait_for(4)
    first = arrivals[0]
    assert all(a.raw == first.raw for a in arrivals[:4]), "the retried body changed"
    gaps = [b.at - a.at for a, b in itertools.pairwise(arrivals[:4])]
    assert all(g >= 0.05 for g in gaps)  # backoff_min
    deadline = time.monotonic() + 5
    while shipper.stats().spool_snapshots and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = shipper.stats()
    assert stats.spool_snapshots == 0
    assert stats.sent == 3 and stats.retried == 3 and stats.rejected == 0
    assert all(n == 1 for n in receiver.stored.values())


def test_a_400_is_never_resent_and_counted_as_rejected(
    receiver: Receiver, make_agent: MakeAgent, caplog: object
) -> None:
    receiver.script = [Step(400, body=b'{"detail": "series[3]: unknown metric"}')]
    shipper = make_agent(receiver.url).start()
    shipper.put(make_batch(1_000))
    receiver.wait_for(1)
    shipper.put(make_batch(2_000))  # the next one goes through
    arrivals = receiver.wait_for(2)
    time.sleep(0.3)  # a resend would need at least backoff_min = 0.05 s
    arrivals = receiver.arrivals
    assert [a.timestamps() for a in arrivals] == [[1_000], [2_000]]
    stats = shipper.stats()
    assert (stats.rejected, stats.sent, stats.retried) == (1, 1, 0)


def test_a_401_keeps_the_snapshots_and_retries_until_the_key_is_accepted(
    receiver: Receiver, make_agent: MakeAgent
) -> None:
    """No valid key yet (a revoked key, a host not enrolled): the snapshots wait in the spool
    and are sent once the server accepts the key, never dropped as rejected."""
    receiver.script = [Step(401, body=b'{"detail": "invalid or revoked agent key"}'), Step(200)]
    shipper = make_agent(receiver.url).start()
    shipper.put(make_batch(1_000))
    arrivals = receiver.wait_for(2)
    assert arrivals[0].raw == arrivals[1].raw
    deadline = time.monotonic() + 5
    while shipper.stats().spool_snapshots and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = shipper.stats()
    assert (stats.sent, stats.retried, stats.rejected) == (1, 1, 0)


def test_the_server_reason_for_a_refusal_is_logged(
    receiver: Receiver, make_agent: MakeAgent, caplog: object
) -> None:
    import logging

    import pytest

    assert isinstance(caplog, pytest.LogCaptureFixture)
    receiver.script = [Step(422, body=b'{"detail": "series[3]: unknown metric cpu_x"}')]
    with caplog.at_level(logging.ERROR, logger="hostpulse.agent.delivery.shipper"):
        shipper = make_agent(receiver.url).start()
        shipper.put(make_batch(1_000))
        receiver.wait_for(1)
        deadline = time.monotonic() + 5
        while shipper.stats().rejected == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "HTTP 422: series[3]: unknown metric cpu_x" in caplog.text


def test_a_429_waits_at_least_retry_after(receiver: Receiver, make_agent: MakeAgent) -> None:
    receiver.script = [Step(429, headers=(("Retry-After", "2"),))]
    shipper = make_agent(receiver.url).start()
    shipper.put(make_batch(1_000))
    first, second = receiver.wait_for(2, timeout=10)
    assert second.at - first.at >= 2.0
    assert second.raw == first.raw


def test_a_503_with_retry_after_is_honoured(receiver: Receiver, make_agent: MakeAgent) -> None:
    receiver.script = [Step(503, headers=(("Retry-After", "1"),))]
    shipper = make_agent(receiver.url).start()
    shipper.put(make_batch(1_000))
    first, second = receiver.wait_for(2, timeout=10)
    assert second.at - first.at >= 1.0


def test_lost_response_is_resent_and_stored_once(receiver: Receiver, make_agent: MakeAgent) -> None:
    receiver.script = [Step(cut=True)]
    shipper = make_agent(receiver.url).start()
    batch = make_batch(1_000)
    shipper.put(batch)
    first, second = receiver.wait_for(2)
    assert first.answered is None and second.answered == 200
    assert second.raw == first.raw  # the same batch came again
    assert set(receiver.stored) == keys_of(batch)  # the receiver holds each sample once
    assert len(first.sample_keys()) + len(second.sample_keys()) == 2 * len(keys_of(batch))


def test_outage_then_backfill_oldest_first_with_live_samples(
    receiver: Receiver, make_agent: MakeAgent
) -> None:
    agent = make_agent(receiver.url, max_batch_snapshots=20, live_snapshots=2)
    port = receiver.port
    receiver.stop()  # the server is down: connections are refused
    shipper = agent.start()
    sent = [make_batch(1_000 * i, seq=i) for i in range(1, 101)]
    for b in sent:
        shipper.put(b)
    deadline = time.monotonic() + 5
    while shipper.stats().retried < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert shipper.stats().retried >= 2 and shipper.stats().sent == 0
    receiver.port = port
    receiver.start()
    expected = set().union(*(keys_of(b) for b in sent))
    receiver.wait_stored(expected)
    assert set(receiver.stored) == expected
    assert all(n == 1 for n in receiver.stored.values()), "a sample was stored twice"
    # the backlog went oldest first: each request is up to 20 of the oldest pending, then (when
    # more were pending) up to 2 of the newest put since the previous read, which are newer;
    # which ones those are depends on how far the puts had got at each read
    firsts = [a.timestamps() for a in receiver.arrivals if a.answered == 200]
    backlog: list[int] = []
    for stamps in firsts:
        oldest, live = stamps[:20], stamps[20:]
        assert all(ts > max(oldest) for ts in live), stamps
        backlog.extend(oldest)
    assert backlog == sorted(backlog)

    def arrival_of(ts: int) -> int:
        return next(i for i, stamps in enumerate(firsts) if ts in stamps)

    # the newest did not wait for the backlog to drain
    assert arrival_of(100_000) < arrival_of(80_000)
    assert max(len(stamps) for stamps in firsts) <= 22


def test_close_flushes_to_the_server(receiver: Receiver, make_agent: MakeAgent) -> None:
    agent = make_agent(receiver.url)
    shipper = agent.start()
    batches = [make_batch(1_000 * i) for i in range(1, 6)]
    for b in batches:
        shipper.put(b)
    agent.close(timeout=5)
    assert set(receiver.stored) == set().union(*(keys_of(b) for b in batches))


def test_close_while_the_server_is_down_keeps_everything_for_the_next_start(
    receiver: Receiver, make_agent: MakeAgent
) -> None:
    agent = make_agent(receiver.url)
    port = receiver.port
    receiver.stop()
    shipper = agent.start()
    batches = [make_batch(1_000 * i) for i in range(1, 6)]
    for b in batches:
        shipper.put(b)
    started = time.monotonic()
    agent.close(timeout=0.5)
    assert time.monotonic() - started < 5
    receiver.port = port
    receiver.start()
    agent.start()  # the same spool directory
    expected = set().union(*(keys_of(b) for b in batches))
    receiver.wait_stored(expected)
    assert all(n == 1 for n in receiver.stored.values())


def test_spool_cap_hit_during_an_outage_drops_the_oldest_and_counts_them_exactly(
    receiver: Receiver, make_agent: MakeAgent
) -> None:
    cap = 256 * 1024
    agent = make_agent(
        receiver.url,
        spool={"max_bytes": cap, "segment_bytes": 16 * 1024},
        max_batch_snapshots=200,
    )
    port = receiver.port
    receiver.stop()
    shipper = agent.start()
    total = 3000
    for i in range(1, total + 1):
        shipper.put(make_batch(1_000 * i, seq=i))
        if i % 100 == 0:
            assert sum(p.stat().st_size for p in agent.spool_dir.iterdir()) <= cap
    dropped = shipper.stats().dropped_size
    assert dropped > 0
    receiver.port = port
    receiver.start()
    deadline = time.monotonic() + 20
    while shipper.stats().spool_snapshots and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = shipper.stats()
    assert stats.spool_snapshots == 0
    got = {ts for (_h, _m, ts) in receiver.stored}
    missing = {1_000 * i for i in range(1, total + 1)} - got
    assert len(missing) == stats.dropped_size  # the counter says exactly what is missing
    assert stats.sent + stats.dropped_size == total == stats.queued
    # what is missing is the oldest, except the batch that was in flight when the outage began
    # (dropped from disk, but delivered when the server came back, and not counted as dropped)
    inflight = set(receiver.arrivals[0].timestamps())
    assert min(inflight) == 1_000
    assert missing == set(range(min(missing), max(missing) + 1, 1_000))
    assert max(missing) < min(got - inflight)
    assert all(n == 1 for n in receiver.stored.values())


def test_a_server_that_does_not_answer_in_time_is_retried(
    receiver: Receiver, make_agent: MakeAgent
) -> None:
    receiver.script = [Step(hang=2.0)]
    shipper = make_agent(receiver.url, timeout=0.5).start()
    batch = make_batch(1_000)
    shipper.put(batch)
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 0.5  # gave up after the timeout, then retried
    assert second.raw == first.raw
    deadline = time.monotonic() + 5
    while shipper.stats().sent == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert shipper.stats().sent == 1 and shipper.stats().retried >= 1


def test_https_with_the_servers_ca_and_verification_on(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    cert, key = self_signed_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    receiver = Receiver(tls=ctx)
    receiver.start()
    try:
        # without the CA the certificate is refused: nothing is delivered, it is retried
        untrusted = make_agent(receiver.url).start()
        untrusted.put(make_batch(1_000))
        deadline = time.monotonic() + 5
        while untrusted.stats().retried < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert untrusted.stats().retried >= 2 and not receiver.arrivals
        untrusted.close(0.2)
        trusted = make_agent(receiver.url, ca_file=str(cert)).start()  # same spool
        (got,) = receiver.wait_for(1)
        assert got.timestamps() == [1_000]
        assert trusted.stats().spool_snapshots in (0, 1)
    finally:
        receiver.stop()
