"""The in-process agent ``hostpulse up`` runs: real collectors, shipped, flushed on stop."""

from __future__ import annotations

from pathlib import Path

from delivery_helpers import Receiver, receiver_fixture  # noqa: F401

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool
from hostpulse.agent.local import LocalAgent


def test_local_agent_ships_this_machine_and_flushes_on_stop(
    tmp_path: Path, receiver: Receiver
) -> None:
    agent = LocalAgent(tmp_path / "spool", interval=1.0)
    agent.start(receiver.url)
    try:
        arrivals = receiver.wait_for(2, timeout=20)
    finally:
        agent.stop()
    metrics = {s.metric for b in arrivals[-1].request.batches for s in b.series}
    assert {"memory_used_bytes", "agent_queued_snapshots"} <= metrics
    with Spool(SpoolSettings(dir=str(tmp_path / "spool"))) as spool:
        stats = spool.stats()
    assert stats.pending_records == 0  # everything collected before the stop was delivered
    assert stats.counters["sent"] == stats.counters["queued"] >= 2
