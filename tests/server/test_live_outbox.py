"""Issue 13 item 9: the live outbox was capped in frames only, so a client that never reads
held up to 256 frames of any size (RSS 123 -> 460 MB). It is capped in bytes too."""

from __future__ import annotations

from wire import batch, now_ms, request

from hostpulse.server.live import LiveHub, WireFormat


def big_request(t: int) -> object:
    values = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.5 for c in range(100)}
    return request(batch("h", [(t + i * 1000, values) for i in range(5)]))


def test_a_client_that_never_reads_is_dropped_at_the_byte_cap() -> None:
    hub = LiveHub(outbox=10_000, outbox_bytes=20_000, clock=lambda: now_ms() / 1000)
    stalled = hub.connect(WireFormat.PROTOBUF)
    stalled.hosts = frozenset({"h"})
    t = now_ms()
    for i in range(20):  # each frame is ~8 KB: 20 of them are far over the cap
        hub.publish(big_request(t + i * 10_000))  # type: ignore[arg-type]
        assert stalled.queued_bytes <= 20_000
    assert stalled.dropped
    assert len(stalled.outbox) == 0 and stalled.queued_bytes == 0
    assert hub.dropped_total == 1


def test_the_bytes_taken_by_the_sender_are_counted_off() -> None:
    hub = LiveHub(outbox=10_000, outbox_bytes=20_000, clock=lambda: now_ms() / 1000)
    reader = hub.connect(WireFormat.PROTOBUF)
    reader.hosts = frozenset({"h"})
    t = now_ms()
    for i in range(20):  # a client that keeps up is never dropped, however much passes
        hub.publish(big_request(t + i * 10_000))  # type: ignore[arg-type]
        while reader.outbox:
            reader.take()
        assert reader.queued_bytes == 0
    assert not reader.dropped
