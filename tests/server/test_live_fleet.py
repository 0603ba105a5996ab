"""Issue 15: every agent posts its own request, so at 10,000 hosts the fleet view got 2,000
frames a second (one per request). The hub gathers the summaries for ``fleet_every`` and
sends the newest of each host in one frame."""

from __future__ import annotations

import asyncio

from wire import batch, now_ms, request

from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.server.live import LiveHub, WireFormat


def cpu(host: str, ts: int, value: float) -> object:
    return request(batch(host, [(ts, {("cpu_busy_percent", ()): value})]))


def frames(payloads: list[bytes | str]) -> list[LiveFrame]:
    return [LiveFrame.FromString(p) for p in payloads if isinstance(p, bytes)]


def test_summaries_of_many_requests_go_out_as_one_frame_with_the_newest_per_host() -> None:
    async def run() -> None:
        hub = LiveHub(fleet_every=0.05, clock=lambda: now_ms() / 1000)
        viewer = hub.connect(WireFormat.PROTOBUF)
        viewer.fleet = True
        t = now_ms()
        for i in range(1_000):  # 1,000 hosts' requests, one host each
            hub.publish(cpu(f"h{i}", t, float(i % 100)))  # type: ignore[arg-type]
        hub.publish(cpu("h7", t + 5_000, 99.0))  # type: ignore[arg-type]
        hub.publish(cpu("h8", t - 5_000, 1.0))  # type: ignore[arg-type]  # older: not sent
        assert not viewer.outbox  # nothing yet: gathered until the interval is over
        await asyncio.sleep(0.2)
        got = frames(list(viewer.outbox))
        assert len(got) == 1
        hosts = {h.host_id: h for h in got[0].fleet.hosts}
        assert len(hosts) == 1_000
        assert hosts["h7"].cpu_percent == 99.0 and hosts["h7"].timestamp_ms == t + 5_000
        assert hosts["h8"].cpu_percent == 8.0

        viewer.outbox.clear()  # the next interval starts empty
        hub.publish(cpu("h1", t + 10_000, 42.0))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        (nxt,) = frames(list(viewer.outbox))
        assert [(h.host_id, h.cpu_percent) for h in nxt.fleet.hosts] == [("h1", 42.0)]
        hub.close()

    asyncio.run(run())


def test_a_closed_hub_sends_nothing_it_had_gathered() -> None:
    async def run() -> None:
        hub = LiveHub(fleet_every=0.05, clock=lambda: now_ms() / 1000)
        viewer = hub.connect(WireFormat.PROTOBUF)
        viewer.fleet = True
        hub.publish(cpu("h1", now_ms(), 1.0))  # type: ignore[arg-type]
        hub.close()
        await asyncio.sleep(0.2)
        assert not viewer.outbox

    asyncio.run(run())
