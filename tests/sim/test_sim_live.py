"""The live encoder sends what ``host_batch`` would, for a fraction of the CPU."""

from __future__ import annotations

import numpy as np

from hostpulse.protocol import IngestRequest
from hostpulse.sim.build import LiveEncoder, host_batch
from hostpulse.sim.model import SimHost, make_profile

T0 = 1_790_000_000_000
STEP = 5_000


def test_live_requests_equal_host_batch_byte_for_byte() -> None:
    a, b = SimHost(make_profile(7)), SimHost(make_profile(7))
    enc = LiveEncoder(a, 5.0, rows=1)
    for tick in range(8):  # ticks 0 and 6 carry top processes
        ts = T0 + tick * STEP
        raw, samples = enc.request(ts, tick)
        want = IngestRequest(
            batches=[host_batch(b, np.array([ts], dtype=np.int64), 5.0, sequence_start=tick)]
        )
        assert raw == want.SerializeToString()
        assert samples == len(b.series)


def test_values_computed_ahead_follow_the_model() -> None:
    host, ref = SimHost(make_profile(3)), SimHost(make_profile(3))
    enc = LiveEncoder(host, 5.0, rows=12)
    sent = []
    for tick in range(30):
        raw, _ = enc.request(T0 + tick * STEP + 37, tick)  # sent a little after the plan
        sent.append(IngestRequest.FromString(raw))
    # the model's values at the planned times, twelve at a time, as the encoder asks for them
    ticks = T0 + 37 + STEP * np.arange(36, dtype=np.int64)  # the plan starts at the first
    expected = np.vstack([ref.block(ticks[i : i + 12]) for i in range(0, 36, 12)])
    for tick, req in enumerate(sent):
        (batch,) = req.batches
        assert batch.host.host_id == host.host_id
        assert len(batch.series) == len(host.series)
        (snap,) = batch.snapshots
        assert snap.timestamp_ms == T0 + tick * STEP + 37
        assert snap.sequence == tick
        assert list(snap.series_index) == list(range(len(host.series)))
        assert bool(snap.top_cpu) == (tick % 6 == 0)
        assert list(snap.values) == expected[tick].tolist()


def test_a_sender_far_behind_plans_again_from_now() -> None:
    host = SimHost(make_profile(4))
    enc = LiveEncoder(host, 5.0, rows=12)
    enc.request(T0, 0)
    raw, _ = enc.request(T0 + 3_600_000, 1)  # an hour later (the machine was suspended)
    (batch,) = IngestRequest.FromString(raw).batches
    assert batch.snapshots[0].timestamp_ms == T0 + 3_600_000
    col = host.series.index(("memory_total_bytes", ()))
    assert batch.snapshots[0].values[col] > 0
