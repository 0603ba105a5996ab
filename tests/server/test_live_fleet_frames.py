"""Fleet cards go out as one frame per ``fleet_every`` seconds with the newest card of each host
that reported, built once for every client (issue 17): 200 requests a second of a 1,000-host
fleet were 200 frames a second per dashboard, and a dashboard 1.3 s behind overflowed its
outbox of 256 frames and was dropped."""

from __future__ import annotations

import asyncio

from wire import batch, now_ms, request

from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.live import LiveHub, WireFormat


def card(host: str, t: int, cpu: float) -> object:
    return request(batch(host, [(t, {("cpu_busy_percent", ()): cpu})]))


def test_a_fleet_frame_per_interval_with_the_newest_card_of_each_host() -> None:
    async def main() -> None:
        hub = LiveHub(fleet_every=0.05, clock=lambda: now_ms() / 1000)
        clients = [hub.connect(WireFormat.PROTOBUF) for _ in range(10)]
        for c in clients:
            c.fleet = True
        t = now_ms()
        for i in range(500):  # 500 requests of 100 hosts within one interval
            hub.publish(card(f"h{i % 100}", t + i, float(i % 100)))  # type: ignore[arg-type]
        hub.publish(card("h0", t - 60_000, 99.0))  # type: ignore[arg-type]  # an old resend
        assert all(not c.outbox for c in clients)  # nothing sent yet: gathered
        await asyncio.sleep(0.2)
        for c in clients:
            assert len(c.outbox) == 1 and not c.dropped
        frames = [c.take() for c in clients]
        assert all(f is frames[0] for f in frames)  # encoded once for all of them
        assert isinstance(frames[0], bytes)
        fleet = LiveFrame.FromString(frames[0]).fleet
        assert sorted(h.host_id for h in fleet.hosts) == sorted(f"h{i}" for i in range(100))
        newest = {h.host_id: h for h in fleet.hosts}
        assert newest["h0"].timestamp_ms == t + 400  # the newest, not the resend
        assert newest["h7"].cpu_percent == 7.0
        # the next request starts the next frame
        hub.publish(card("h1", t + 1000, 1.0))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        (only,) = LiveFrame.FromString(clients[0].take()).fleet.hosts  # type: ignore[arg-type]
        assert only.host_id == "h1"

    asyncio.run(main())


def test_fleet_every_zero_sends_a_frame_per_request() -> None:
    hub = LiveHub(fleet_every=0, clock=lambda: now_ms() / 1000)
    client = hub.connect(WireFormat.PROTOBUF)
    client.fleet = True
    t = now_ms()
    for i in range(3):
        hub.publish(card("h", t + i, 1.0))  # type: ignore[arg-type]
    assert len(client.outbox) == 3


def test_a_card_is_the_same_whatever_the_order_of_a_snapshots_series() -> None:
    from hostpulse.server.live import card_series, summarize

    values = {
        ("cpu_busy_percent", ()): 12.5,
        ("memory_usage_percent", ()): 40.0,
        ("cpu_load1", ()): 0.7,
        ("filesystem_usage_percent", (("mountpoint", "/"),)): 55.0,
        ("filesystem_usage_percent", (("mountpoint", "/data"),)): 81.0,
        ("network_receive_bytes_per_second", (("interface", "eth0"),)): 100.0,
        ("network_receive_bytes_per_second", (("interface", "lo"),)): 1e9,
        ("network_transmit_bytes_per_second", (("interface", "eth0"),)): 50.0,
        ("memory_total_bytes", ()): 8e9,
    }
    in_order = batch("h", [(1000, values)])
    shuffled = batch("h", [(1000, values)])
    snap = shuffled.snapshots[0]
    pairs = list(zip(snap.series_index, snap.values, strict=True))[::-1]
    del snap.series_index[:]
    del snap.values[:]
    snap.series_index.extend(i for i, _ in pairs)
    snap.values.extend(v for _, v in pairs)
    expected = summarize(in_order)
    assert expected is not None
    assert (expected.cpu_percent, expected.memory_percent, expected.load1) == (12.5, 40.0, 0.7)
    assert expected.disk_percent == 81.0  # the fullest filesystem
    assert expected.net_rx_bytes_per_second == 100.0  # loopback not counted
    assert expected.net_tx_bytes_per_second == 50.0
    assert summarize(shuffled) == expected
    assert summarize(in_order, card_series(in_order)) == expected


def test_a_card_shows_the_newest_snapshot_and_only_the_values_the_host_sent() -> None:
    from hostpulse.server.live import summarize

    cpu = ("cpu_busy_percent", ())
    lo = ("network_receive_bytes_per_second", (("interface", "lo"),))
    b = batch(
        "h",
        [(2000, {cpu: 30.0, lo: 5.0}), (3000, {cpu: 0.0, lo: 6.0}), (1000, {cpu: 9.0, lo: 7.0})],
    )
    card = summarize(b)
    assert card is not None
    assert (card.host_id, card.timestamp_ms) == ("h", 3000)  # the newest, wherever it is
    assert card.HasField("cpu_percent") and card.cpu_percent == 0.0  # a zero is a value
    for absent in ("memory_percent", "disk_percent", "load1", "net_tx_bytes_per_second"):
        assert not card.HasField(absent)
    assert not card.HasField("net_rx_bytes_per_second")  # loopback only: nothing to show
    assert summarize(batch("h", [])) is None
