"""Delivery through a server outage: N simulated agents (real spools and shippers, in this
process) and one real ``hostpulse agent`` ship to a real ``hostpulse server``; the server is
stopped for a while, then started again.

Prints and records: samples lost (target 0), duplicates (target 0), the time from the server's
restart until every backlog is drained, the real agent's RSS before, during and after the
outage (the spool is on disk, so it should stay flat) and this process's RSS (N agents).

    python bench/outage.py                       # 200 agents, 5 s interval, 10 min outage
    python bench/outage.py --agents 20 --outage 30 --warmup 10 --no-doc   # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from _common import ADMIN_PASSWORD, append_doc, enroll_all, free_port, wait_http, write_json

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.delivery.spool import Spool
from hostpulse.server.config import ServerSettings
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile
from hostpulse.store import open_store
from hostpulse.store.types import Tier

METRIC = "cpu_busy_percent"
REAL_METRIC = "memory_used_bytes"
REAL_HOST = "bench-real-agent"


@dataclass
class SimAgent:
    host: SimHost
    shipper: Shipper
    produced: list[int] = field(default_factory=list)
    seq: int = 0


class Server:
    """``hostpulse server`` on a fixed loopback port, so it can be stopped and started again."""

    def __init__(self, data: Path, port: int, log: Path) -> None:
        self.data, self.port, self.log = data, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-c", "from hostpulse.cli.main import main; main()", "server"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data)]
        cmd += ["--log-level", "warning"]
        # the default per-key rate limit stays on: the backlog drain must work within it
        env = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_http(f"{self.url}/api/v1/health", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.proc = None


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def tick_loop(agents: list[SimAgent], interval: float, stop: threading.Event) -> None:
    """Every ``interval`` seconds each simulated agent hands one snapshot to its shipper."""
    origin = time.monotonic()
    k = 0
    while not stop.is_set():
        ts = int(time.time() * 1000)
        for a in agents:
            batch = host_batch(a.host, np.array([ts], dtype=np.int64), interval, 6, a.seq)
            a.seq += 1
            a.shipper.put(batch)
            a.produced.append(ts)
        k += 1
        stop.wait(max(0.0, origin + k * interval - time.monotonic()))


def stored(data: Path, hosts: list[str], metric: str) -> dict[str, list[int]]:
    async def read() -> dict[str, list[int]]:
        store = open_store(ServerSettings(data_dir=data).store_url)
        await store.start()
        try:
            out: dict[str, list[int]] = {}
            for h in hosts:
                stamps: list[int] = []
                cursor: str | None = None
                while True:
                    res = await store.query_range(
                        h, metric, 0, 2**62, tier=Tier.RAW, cursor=cursor, limit=10_000
                    )
                    stamps += [p.ts_ms for s in res.series for p in s.points]
                    cursor = res.next_cursor
                    if cursor is None:
                        break
                out[h] = stamps
            return out
        finally:
            await store.close()

    return asyncio.run(read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--outage", type=float, default=600.0)
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the shippers' retry warnings would flood

    work = Path(tempfile.mkdtemp(prefix="hostpulse-outage-"))
    server = Server(work / "data", free_port(), work / "server.log")
    server.start()
    rng = random.Random(1)
    agents: list[SimAgent] = []
    hosts = [SimHost(make_profile(i, 1), 1) for i in range(args.agents)]
    keys = enroll_all(server.url, [h.host_id for h in hosts] + [REAL_HOST])
    for i, host in enumerate(hosts):
        spool = Spool(SpoolSettings(dir=str(work / "spools" / str(i))))
        shipper = Shipper(
            ShipperSettings(server=server.url, api_key=keys[host.host_id]),
            spool,
            rng=random.Random(rng.random()),
        )
        shipper.start()
        agents.append(SimAgent(host, shipper))
    real_env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    (work / "real.key").write_text(keys[REAL_HOST])
    (work / "real.key").chmod(0o600)
    # the console script: its lean entry point is what a real host runs (no typer, no server)
    real_cmd = [str(Path(sys.executable).with_name("hostpulse")), "agent"]
    real_cmd += ["--server", server.url, "--interval", "1", "--host-id", REAL_HOST]
    real_cmd += ["--spool-dir", str(work / "real-spool"), "--log-level", "warning"]
    real_cmd += ["--key-file", str(work / "real.key")]
    with (work / "agent.log").open("ab") as out:
        real = subprocess.Popen(real_cmd, stdout=out, stderr=subprocess.STDOUT, env=real_env)
    stop = threading.Event()
    ticker = threading.Thread(target=tick_loop, args=(agents, args.interval, stop), daemon=True)
    ticker.start()
    try:
        time.sleep(args.warmup)
        rss_before = rss_mb(real.pid)
        own_before = rss_mb(os.getpid())
        server.stop()
        print(f"server stopped; outage of {args.outage:.0f} s", flush=True)
        during: list[float] = []
        end = time.monotonic() + args.outage
        while time.monotonic() < end:
            during.append(rss_mb(real.pid))
            time.sleep(min(10.0, max(0.0, end - time.monotonic())))
        rss_during_end = rss_mb(real.pid)
        own_during_end = rss_mb(os.getpid())
        spool_bytes = sum(a.shipper.stats().spool_bytes for a in agents)
        backlog = sum(a.shipper.stats().spool_snapshots for a in agents)
        server.start()
        restarted = time.monotonic()
        print(
            f"server back; backlog {backlog} snapshots, {spool_bytes / 2**20:.1f} MiB", flush=True
        )
        deadline = restarted + args.drain_timeout
        drained_at: float | None = None
        while time.monotonic() < deadline:
            # live snapshots keep coming: drained = nothing older than two intervals is pending
            if all(a.shipper.stats().spool_snapshots <= 2 for a in agents):
                drained_at = time.monotonic()
                break
            time.sleep(0.5)
        time.sleep(2 * args.interval)
        rss_after = rss_mb(real.pid)
    finally:
        stop.set()
        ticker.join(30)
        for a in agents:
            a.shipper.close(10)
        if real.poll() is None:
            real.send_signal(signal.SIGTERM)
            real.wait(60)
        server.stop()

    sim_hosts = [a.host.host_id for a in agents]
    got = stored(work / "data", sim_hosts, METRIC)
    lost = dup = produced = 0
    for a in agents:
        stamps = got[a.host.host_id]
        produced += len(a.produced)
        dup += len(stamps) - len(set(stamps))
        lost += len(set(a.produced) - set(stamps))
    real_state = json.loads((work / "real-spool" / "state.json").read_text())["counters"]
    real_stamps = stored(work / "data", [REAL_HOST], REAL_METRIC)[REAL_HOST]
    real_lost = real_state["queued"] - len(set(real_stamps))
    dropped = sum(a.shipper.stats().dropped for a in agents)
    drain = f"{drained_at - restarted:.1f} s" if drained_at else f"> {args.drain_timeout:.0f} s"
    rows = [
        ("simulated agents", f"{args.agents} at {args.interval:g} s + 1 real agent at 1 s"),
        ("outage", f"{args.outage:.0f} s (server stopped with SIGTERM, then started again)"),
        ("snapshots produced (simulated)", f"{produced}"),
        (
            "backlog when the server came back",
            f"{backlog} snapshots, {spool_bytes / 2**20:.1f} MiB",
        ),
        ("samples lost (simulated / real agent)", f"{lost} / {real_lost} (target 0)"),
        ("duplicates stored", f"{dup} (target 0)"),
        ("dropped by spool caps", f"{dropped}"),
        ("time to drain the backlog after restart", drain),
        (
            "real agent RSS: before / end of outage / max during / after",
            f"{rss_before:.1f} / {rss_during_end:.1f} / {max(during):.1f} / {rss_after:.1f} MB",
        ),
        (
            f"bench process RSS ({args.agents} agents): before / end of outage",
            f"{own_before:.1f} / {own_during_end:.1f} MB",
        ),
    ]
    table = "| measure | value |\n| --- | --- |\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    print(table)
    if args.json is not None:
        write_json(
            args.json,
            {
                "lost": lost + real_lost,
                "duplicates": dup,
                "dropped": dropped,
                "drain_s": drained_at - restarted if drained_at else None,
                "real_agent_rss_growth_mb": rss_during_end - rss_before,
            },
        )
    if not args.no_doc:
        cmd = "python bench/outage.py " + " ".join(sys.argv[1:])
        note = (
            "The time to drain includes the agents' backoff: after several failed attempts "
            "they retry every 30-60 s (jittered), so the first request after the restart "
            "comes up to a minute later; the backlog itself goes in one or two requests per "
            "agent."
        )
        append_doc("Delivery through a server outage (bench/outage.py)", cmd, table + "\n\n" + note)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
