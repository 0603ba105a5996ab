"""Whole system: a real ``hostpulse agent`` shipping to a real ``hostpulse server`` on loopback,
through server outages and agent crashes. The server's store is read directly at the end."""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from pathlib import Path

import pytest
from delivery_helpers import PLAIN, make_batch
from system_helpers import (
    HOST_ID,
    CuttingProxy,
    enrollment_token,
    free_port,
    host_key,
    spool_state,
    start_agent,
    start_server,
    stored_timestamps,
    wait_until,
)

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.delivery.spool import Spool

# The acceptance runs the server outage for 2 minutes; the suite uses a shorter one to
# stay fast. HOSTPULSE_TEST_OUTAGE_S=120 runs the full length.
OUTAGE_S = float(os.environ.get("HOSTPULSE_TEST_OUTAGE_S", "12"))
KILLS = int(os.environ.get("HOSTPULSE_TEST_KILLS", "20"))


def assert_complete(stamps: list[int], produced: int) -> None:
    """Every snapshot the agent produced is stored exactly once, strictly increasing, with no
    hole (the agent ticks every second)."""
    assert len(stamps) == len(set(stamps)), "a sample was stored twice"
    ordered = sorted(stamps)
    assert len(ordered) == produced, f"stored {len(ordered)} of {produced} snapshots"
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert all(g > 0 for g in gaps)
    assert max(gaps) < 2_500, f"a hole of {max(gaps)} ms"


@pytest.mark.slow
def test_server_outage_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data, spool = tmp_path / "data", tmp_path / "spool"
    server = start_server(data, port, tmp_path / "server.log")
    agent = start_agent(url, spool, tmp_path / "agent.log", enroll=enrollment_token(url))
    try:
        time.sleep(4)  # shipping live
        server.terminate()
        time.sleep(OUTAGE_S)  # the agent keeps collecting into its spool
        server = start_server(data, port, tmp_path / "server.log")
        time.sleep(6)  # back-fill while new samples keep coming
        assert agent.terminate() == 0  # graceful: flushes what is left
    finally:
        agent.kill()
        server.kill()
    counters = spool_state(spool)
    assert counters["queued"] >= 4 + OUTAGE_S
    assert counters["sent"] == counters["queued"]
    assert counters.get("dropped_size", 0) == counters.get("rejected", 0) == 0
    assert_complete(stored_timestamps(data), counters["queued"])
    # the agent's own delivery metrics were shipped like any other metric
    assert stored_timestamps(data, "agent_queued_snapshots")


@pytest.mark.slow
def test_agent_sigkilled_at_random_points_loses_at_most_the_last_second(tmp_path: Path) -> None:
    rng = random.Random(int(time.time()))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data, spool = tmp_path / "data", tmp_path / "spool"
    runs: list[tuple[float, float]] = []  # wall clock: agent started, agent killed
    server = start_server(data, port, tmp_path / "server.log")
    token: str | None = enrollment_token(url)  # the first run enrolls, the others reuse the key
    try:
        for i in range(KILLS):
            down = (i // 5) % 2 == 1  # five kills with the server up, five with it down, ...
            if down and server.alive:
                server.terminate()
            if not down and not server.alive:
                server = start_server(data, port, tmp_path / "server.log")
            started = time.time()
            agent = start_agent(url, spool, tmp_path / "agent.log", enroll=token)
            token = None
            # the random point falls in the agent's running time, not in its start-up: on a
            # loaded machine the interpreter's imports alone can outlast a short sleep
            wait_until(
                lambda a=agent, n=i + 1: a.output().count("agent started") >= n, 60, "agent start"
            )
            time.sleep(rng.uniform(1.2, 2.5))
            agent.kill()  # SIGKILL, at a random point of the agent's second
            runs.append((started, time.time()))
        if not server.alive:
            server = start_server(data, port, tmp_path / "server.log")
        agent = start_agent(url, spool, tmp_path / "agent.log")
        time.sleep(4)  # the last run drains what the killed ones left in the spool
        assert agent.terminate() == 0
    finally:
        server.kill()
    with Spool(SpoolSettings(dir=str(spool))) as left:
        stats = left.stats()
    assert stats.pending_records == 0
    assert stats.counters.get("lost_corrupt", 0) == 0
    stamps = stored_timestamps(data)
    assert len(stamps) == len(set(stamps)), "a sample was stored twice"
    for started, killed in runs:
        mine = sorted(ts for ts in stamps if started * 1000 <= ts <= killed * 1000)
        assert mine, "a run left no sample"
        gaps = [b - a for a, b in itertools.pairwise(mine)]
        assert all(g < 1_800 for g in gaps), f"a hole of {max(gaps)} ms inside a run"
        # at most the last second before the kill is missing: the newest stored snapshot is
        # at most one interval (1 s) plus the collection budget (0.5 s) older than the kill
        assert killed * 1000 - mine[-1] < 1_800


def test_a_lost_response_from_the_real_server_stores_nothing_twice(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    server = start_server(data, port, tmp_path / "server.log")
    proxy = CuttingProxy(port, cut=1)
    spool = Spool(SpoolSettings(dir=str(tmp_path / "spool")))
    key = host_key(f"http://127.0.0.1:{port}")
    settings = ShipperSettings(server=proxy.url, api_key=key, backoff_min=0.05, backoff_max=0.2)
    shipper = Shipper(settings, spool)
    now = int(time.time() * 1000)
    batches = [make_batch(now - 3000 + 1000 * i, host=HOST_ID, seq=i) for i in range(3)]
    try:
        for b in batches:
            shipper.put(b)
        shipper.start()
        wait_until(lambda: shipper.stats().sent == 3, 20, "delivery through the proxy")
        shipper.close(2)
    finally:
        proxy.close()
        server.terminate()
    first, *later = proxy.exchanges
    assert first[3] and first[1] == 200  # the server committed, the agent never heard it
    resent = [e for e in later if e[0] == first[0]]
    assert resent, "the batch whose response was lost was not sent again"
    assert json.loads(resent[0][2])["duplicate_samples"] > 0  # and the server knew it
    stamps = stored_timestamps(data, PLAIN[0], HOST_ID)
    assert sorted(stamps) == [b.snapshots[0].timestamp_ms for b in batches]


def test_a_second_agent_on_the_same_spool_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the agents just spool
    first = start_agent(url, tmp_path / "spool", tmp_path / "a.log")
    try:
        wait_until(lambda: (tmp_path / "spool" / "lock").exists(), 20, "the first agent")
        time.sleep(1)
        second = start_agent(url, tmp_path / "spool", tmp_path / "b.log")
        assert second.proc.wait(30) == 2
        out = second.output()
        assert "spool.dir:" in out and "in use by another agent" in out
        assert "Traceback" not in out
    finally:
        first.kill()
