"""Alert latency: from the arrival of a breaching sample to the webhook receiver getting it.

In-process version (the HTTP ingest path is wired at merge): 1,000 simulated hosts feed
``AlertService.observe`` at their real rate (one batch of ~150 samples per host every 5 s,
spread evenly), on a real SQLite file (WAL, as the store sets it), with the default rules
plus an immediate CPU rule routed to a generic webhook. A separate receiver process stamps
each request on arrival. Every ``--every`` seconds one host (a different one each time)
sends CPU 97 %; the latency is receiver arrival time minus the moment that sample was handed
to ``observe``.

Reference, same run: a direct POST of the same size to the same receiver (network + receiver).

    .venv/bin/python bench/alert_latency.py [--hosts 1000] [--breaches 60] [--every 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from hostpulse.alerts.config import parse_config
from hostpulse.alerts.repository import AlertRepository
from hostpulse.alerts.service import AlertService

RECEIVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.time_ns()
        try:
            doc = json.loads(body)
            ids = [a["host"] for a in doc.get("alerts", [])] if doc.get("kind") == "firing" else []
        except ValueError:
            ids = []
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        print(json.dumps({"t": now, "hosts": ids, "rule": doc.get("rule_id")}), flush=True)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def host_batch(i: int, cpu: float) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    """About 150 series, shaped like a real host's batch."""
    samples: list[tuple[str, tuple[tuple[str, str], ...], float]] = [
        ("cpu_busy_percent", (), cpu),
        ("memory_usage_percent", (), 40.0 + i % 20),
        ("cpu_load1", (), 0.5),
        ("cpu_load5", (), 0.4),
        ("cpu_load15", (), 0.3),
    ]
    for core in range(8):
        for mode in ("user", "system", "idle", "iowait", "steal"):
            samples.append(("cpu_core_usage_percent", (("cpu", str(core)), ("mode", mode)), 5.0))
    for dev, mount in (("sda1", "/"), ("sdb1", "/data")):
        labels = (("device", dev), ("mountpoint", mount))
        samples.append(("filesystem_usage_percent", labels, 50.0))
        samples.append(("filesystem_free_bytes", labels, 5e10))
        samples.append(("filesystem_used_bytes", labels, 5e10))
    for dev in ("sda", "sdb"):
        samples.append(("disk_await_seconds", (("device", dev),), 0.004))
        samples.append(("disk_busy_percent", (("device", dev),), 3.0))
    while len(samples) < 150:
        n = len(samples)
        samples.append(("network_receive_bytes_per_second", (("interface", f"eth{n}"),), 1e5))
    return samples


class Receiver:
    """The webhook receiver: a separate process that stamps each request on arrival."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/hook"
        self.arrivals: dict[str, int] = {}
        self.got = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            doc = json.loads(line)
            with self.got:
                for host in doc["hosts"]:
                    self.arrivals.setdefault(host, doc["t"])
                self.got.notify_all()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


async def run(args: argparse.Namespace, rx: Receiver) -> dict[str, float]:
    url, arrivals, got = rx.url, rx.arrivals, rx.got
    tmp = tempfile.TemporaryDirectory()
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp.name}/hp.db")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # What the store sets on its connections (the server shares its engine with alerts).
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    await AlertRepository(engine).create_tables()
    cfg = parse_config(
        {
            "allow_networks": ["127.0.0.0/8"],
            "channels": [{"id": "hook", "type": "webhook", "url": url}],
            "rules": [
                {
                    "id": "cpu_now",
                    "metric": "cpu_busy_percent",
                    "critical": 90,
                    "channels": ["hook"],
                }
            ],
        },
        {},
    )
    service = AlertService(engine, cfg)
    await service.start()
    # The default rules (created on first start) also evaluate, but route nowhere else.
    observe_ns: list[int] = []
    sent: dict[str, int] = {}
    breach_hosts = random.Random(7).sample(range(args.hosts), args.breaches)
    try:
        # Reference: a direct POST of a similar body to the same receiver.
        ref: list[float] = []
        async with httpx.AsyncClient() as client:
            for k in range(20):
                t0 = time.time_ns()
                body = {"kind": "firing", "rule_id": "ref", "alerts": [{"host": f"ref{k}"}]}
                await client.post(url, json=body)
                with got:
                    got.wait_for(lambda k=k: f"ref{k}" in arrivals, 5)
                ref.append((arrivals[f"ref{k}"] - t0) / 1e6)
        period = 5.0
        step = 0.05
        per_step = max(1, round(args.hosts * step / period))
        start = time.monotonic()
        next_breach = start + 10.0  # warm up: every host reports twice first
        cursor = 0
        pending: list[int] = list(breach_hosts)
        hot: set[int] = set()
        deadline = start + 10.0 + args.breaches * args.every + 30
        while time.monotonic() < deadline:
            now = time.monotonic()
            if pending and now >= next_breach:
                hot.add(pending.pop())
                next_breach += args.every
            for _ in range(per_step):
                h = cursor % args.hosts
                cursor += 1
                name = f"host-{h:04d}"
                cpu = 97.0 if h in hot else 20.0 + (h % 30)
                batch = host_batch(h, cpu)
                t0 = time.time_ns()
                service.observe(name, {"env": "bench"}, t0 // 1_000_000, batch)
                observe_ns.append(time.time_ns() - t0)
                if h in hot:
                    sent.setdefault(name, t0)
                    hot.discard(h)
            with got:
                if not pending and not hot and all(n in arrivals for n in sent):
                    break
            await asyncio.sleep(max(0.0, start + cursor / per_step * step - time.monotonic()))
        lat = sorted((arrivals[n] - t) / 1e6 for n, t in sent.items() if n in arrivals)
        missing = [n for n in sent if n not in arrivals]
    finally:
        await service.stop()
        await engine.dispose()
        tmp.cleanup()
    q = statistics.quantiles(lat, n=20, method="inclusive")
    return {
        "hosts": args.hosts,
        "breaches": len(sent),
        "missing": len(missing),
        "p50_ms": statistics.median(lat),
        "p95_ms": q[18],
        "max_ms": lat[-1],
        "ref_p50_ms": statistics.median(ref),
        "observe_us_per_batch": statistics.median(observe_ns) / 1000,
        "batches": len(observe_ns),
    }


def observe_cost(hosts: int = 1000, rounds: int = 5) -> tuple[float, float]:
    """Microseconds per 150-sample batch: with the default rules, and with no rules at all."""
    from hostpulse.alerts.clock import SystemClock
    from hostpulse.alerts.engine import AlertEngine
    from hostpulse.alerts.rules import default_rules

    batches = [host_batch(h, 20.0 + h % 30) for h in range(hosts)]
    result = []
    for rules in (default_rules(), []):
        engine = AlertEngine(SystemClock())
        engine.set_rules(rules)
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            now = int(time.time() * 1000)
            for h, batch in enumerate(batches):
                engine.observe(f"host-{h}", {}, now, batch)
            best = min(best, time.perf_counter() - t0)
        result.append(best / hosts * 1e6)
    return result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--breaches", type=int, default=60)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between breaches")
    parser.add_argument("--write", type=Path, help="append the result to this markdown file")
    args = parser.parse_args()
    rx = Receiver()
    try:
        r = asyncio.run(run(args, rx))
    finally:
        rx.stop()
    lines = [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
        "2 shared cores (other helpers were running); "
        f"command: `python bench/alert_latency.py --hosts {args.hosts} "
        f"--breaches {args.breaches} --every {args.every}`",
        f"- {r['hosts']} hosts x ~150 series every 5 s ({r['batches']} batches observed), "
        f"{r['breaches']} breaches, {r['missing']} not delivered",
        f"- breach sample -> webhook received: P50 {r['p50_ms']:.1f} ms, "
        f"P95 {r['p95_ms']:.1f} ms, max {r['max_ms']:.1f} ms (target P95 <= 2000 ms)",
        f"- reference, direct POST to the same receiver: P50 {r['ref_p50_ms']:.1f} ms "
        f"(alert P50 / reference = {r['p50_ms'] / r['ref_p50_ms']:.1f}x)",
        f"- observe() per host batch of ~150 samples: median {r['observe_us_per_batch']:.1f} us",
    ]
    with_rules, no_rules = observe_cost()
    lines.append(
        f"- observe() tight loop, 150-sample batch: {with_rules:.1f} us with the default rules, "
        f"{no_rules:.1f} us with no rules ({with_rules * 1e3 / 150:.0f} ns per sample; "
        f"300,000 samples/s would cost {with_rules * 2000 / 1e6 * 100:.1f} % of one core)"
    )
    text = "\n".join(lines)
    print(text)
    if args.write:
        with args.write.open("a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
