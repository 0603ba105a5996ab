"""The spool: records leave only when acknowledged, caps drop the oldest and count them,
counters and the cursor survive a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool, SpoolError


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def payload(i: int, size: int = 200) -> bytes:
    return f"record-{i:06d}-".encode().ljust(size, b".")


def settings(d: Path, **kw: Any) -> SpoolSettings:
    return SpoolSettings(dir=str(d), **kw)


def drain(spool: Spool) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(10_000):
        batch = spool.read_batch(50, 1 << 20)
        if not batch:
            return out
        spool.ack(r.seq for r in batch)
        out.extend(r.payload for r in batch)
    raise AssertionError("spool did not drain")


def disk_usage(d: Path) -> int:
    return sum(p.stat().st_size for p in d.iterdir())


def test_records_leave_only_when_acknowledged_oldest_first(tmp_path: Path) -> None:
    with Spool(settings(tmp_path)) as spool:
        seqs = [spool.append(payload(i)) for i in range(10)]
        first = spool.read_batch(4, 1 << 20)
        assert [r.payload for r in first] == [payload(i) for i in range(4)]
        # not acknowledged: the same records again
        assert [r.seq for r in spool.read_batch(4, 1 << 20)] == seqs[:4]
        spool.ack(r.seq for r in first)
        assert [r.payload for r in spool.read_batch(100, 1 << 20)] == [
            payload(i) for i in range(4, 10)
        ]
        assert spool.stats().pending_records == 6
    with Spool(settings(tmp_path)) as spool:
        assert drain(spool) == [payload(i) for i in range(4, 10)]
        assert spool.stats().pending_records == 0
        assert spool.stats().counters["queued"] == 10


def test_batches_are_bounded_by_count_and_bytes(tmp_path: Path) -> None:
    with Spool(settings(tmp_path)) as spool:
        for i in range(20):
            spool.append(payload(i, 1000))
        assert len(spool.read_batch(7, 1 << 20)) == 7
        assert len(spool.read_batch(100, 3500)) == 3
        assert len(spool.read_batch(100, 10)) == 1  # always at least one


def test_live_records_ride_along_with_the_backlog_and_are_not_resent(tmp_path: Path) -> None:
    with Spool(settings(tmp_path)) as spool:
        for i in range(30):
            spool.append(payload(i))
        batch = spool.read_batch(10, 1 << 20, live=2)
        assert [r.seq for r in batch] == [*range(1, 11), 29, 30]
        spool.ack(r.seq for r in batch)
        spool.append(payload(30))
        # only what arrived since the last request rides along, not the older backlog
        batch = spool.read_batch(10, 1 << 20, live=2)
        assert [r.seq for r in batch] == [*range(11, 21), 31]
        spool.ack(r.seq for r in batch)
        rest = drain(spool)
        assert rest == [payload(i) for i in range(20, 28)]
    with Spool(settings(tmp_path)) as spool:
        assert drain(spool) == []


def test_refused_records_are_removed(tmp_path: Path) -> None:
    with Spool(settings(tmp_path)) as spool:
        spool.append(payload(1))
        spool.append(payload(2))
        bad = spool.read_batch(1, 1 << 20)
        assert spool.ack([r.seq for r in bad], delivered=False) == 1
        assert drain(spool) == [payload(2)]


def test_segments_are_deleted_once_delivered(tmp_path: Path) -> None:
    with Spool(settings(tmp_path, max_bytes=1 << 20, segment_bytes=16 << 10)) as spool:
        for i in range(400):
            spool.append(payload(i))
        assert spool.stats().segments > 4
        drain(spool)
        spool.sync()
        assert len(list(tmp_path.glob("*.seg"))) == 1
        assert disk_usage(tmp_path) < 16 * 1024 + 1000  # the active segment and the state


def test_size_cap_drops_the_oldest_and_counts_exactly(tmp_path: Path) -> None:
    cap = 256 * 1024
    with Spool(settings(tmp_path, max_bytes=cap, segment_bytes=16 << 10)) as spool:
        for i in range(3000):
            spool.append(payload(i))
            assert disk_usage(tmp_path) <= cap
        stats = spool.stats()
        dropped = stats.counters["dropped_size"]
        assert dropped > 0
        assert dropped + stats.pending_records == 3000
        kept = drain(spool)
    assert kept == [payload(i) for i in range(dropped, 3000)]  # the oldest went
    with Spool(settings(tmp_path, max_bytes=cap)) as spool:
        assert spool.stats().counters["dropped_size"] == dropped  # survives a restart


def test_age_cap_drops_expired_records_and_counts_them(tmp_path: Path) -> None:
    clock = Clock()
    s = settings(tmp_path, max_age=3600, segment_bytes=16 << 10)
    with Spool(s, clock=clock) as spool:
        for i in range(300):  # several segments, all old
            spool.append(payload(i))
        clock.t += 1800
        for i in range(300, 310):
            spool.append(payload(i))
        clock.t += 1801  # the first 300 are now older than an hour, the last 10 are not
        spool.sync()
        assert spool.stats().segments < 4
        assert drain(spool) == [payload(i) for i in range(300, 310)]
        stats = spool.stats()
        assert stats.counters["dropped_age"] == 300
        assert stats.pending_records == 0


def test_a_record_dropped_while_in_flight_then_delivered_counts_as_sent(tmp_path: Path) -> None:
    cap = 256 * 1024
    with Spool(settings(tmp_path, max_bytes=cap, segment_bytes=16 << 10)) as spool:
        spool.append(payload(0))
        inflight = spool.read_batch(10, 1 << 20)
        for i in range(1, 3000):
            spool.append(payload(i))
        dropped = spool.stats().counters["dropped_size"]
        assert spool.ack(r.seq for r in inflight) == 1  # the server got it after all
        assert spool.stats().counters["dropped_size"] == dropped - 1
        assert dropped - 1 + spool.stats().pending_records + 1 == 3000


def test_counters_survive_a_restart(tmp_path: Path) -> None:
    with Spool(settings(tmp_path)) as spool:
        spool.append(payload(1))
        spool.add_counter("sent", 5)
        spool.add_counter("retried", 2)
    with Spool(settings(tmp_path)) as spool:
        c = spool.stats().counters
        assert (c["queued"], c["sent"], c["retried"]) == (1, 5, 2)


def test_a_record_larger_than_a_segment_is_refused(tmp_path: Path) -> None:
    with (
        Spool(settings(tmp_path, max_bytes=1 << 20, segment_bytes=16 << 10)) as spool,
        pytest.raises(SpoolError, match="larger than a spool segment"),
    ):
        spool.append(b"x" * 20_000)


def test_default_directory_is_per_user(tmp_path: Path) -> None:
    assert SpoolSettings().directory().is_relative_to(Path.home())
    assert SpoolSettings(dir=str(tmp_path / "x")).directory() == tmp_path / "x"


def test_one_spool_directory_serves_one_agent(tmp_path: Path) -> None:
    with Spool(settings(tmp_path)) as spool:
        spool.append(payload(1))
        with pytest.raises(SpoolError, match="in use by another agent"):
            Spool(settings(tmp_path))
    with Spool(settings(tmp_path)) as spool:  # free again once closed
        assert spool.stats().pending_records == 1


def test_the_cursor_is_written_at_most_once_per_state_interval(tmp_path: Path) -> None:
    """state.json (each write an fsync'd file) is written by sync() only once state_interval
    has passed since the last write (here: the open); close() always writes it."""
    state = tmp_path / "state.json"
    spool = Spool(settings(tmp_path, state_interval=3600.0))
    spool.append(payload(1))
    spool.ack(r.seq for r in spool.read_batch(10, 1 << 20))
    spool.sync()  # the open wrote it just now
    written = state.read_bytes()
    spool.append(payload(2))
    spool.ack(r.seq for r in spool.read_batch(10, 1 << 20))
    spool.sync()
    assert state.read_bytes() == written  # within the interval: not written again
    spool.close()
    assert state.read_bytes() != written
    with Spool(settings(tmp_path)) as again:
        assert again.read_batch(10, 1 << 20) == []  # close() kept both acks

    every = tmp_path / "every"
    spool = Spool(settings(every, state_interval=0.0))
    spool.append(payload(3))
    before = (every / "state.json").read_bytes()
    spool.ack(r.seq for r in spool.read_batch(10, 1 << 20))
    spool.sync()
    assert (every / "state.json").read_bytes() != before
    spool.close()


def test_sync_fsyncs_only_for_records_not_yet_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hostpulse.agent.delivery.spool.spool as spool_module

    spool = Spool(settings(tmp_path, state_interval=3600.0))
    calls: list[int] = []
    real = spool_module.os.fsync
    monkeypatch.setattr(spool_module.os, "fsync", lambda fd: calls.append(fd) or real(fd))
    spool.append(payload(1))
    spool.sync()
    assert len(calls) == 1  # pending: it must survive a crash of the machine
    spool.append(payload(2))
    spool.ack(r.seq for r in spool.read_batch(10, 1 << 20))
    spool.sync()
    assert len(calls) == 1  # everything delivered already: nothing to make durable
    spool.close()  # the state write makes every record it counts durable first
    assert len(calls) >= 2
    with Spool(settings(tmp_path)) as again:
        assert again.stats().counters.get("lost_corrupt", 0) == 0
        assert again.read_batch(10, 1 << 20) == []
