"""Alert latency over HTTP: from the breaching request reaching ``hostpulse server`` to a
webhook receiver getting the notification.

A real ``hostpulse server`` (subprocess, loopback, its own data directory) runs with an
``alerts.yml`` holding the default rules plus an immediate rule ``cpu_now``
(``cpu_busy_percent`` critical above 90) routed to a generic webhook channel whose URL is a
receiver process on 127.0.0.1 (allow-listed with ``allow_networks``). The receiver stamps each
request on arrival (``time.time_ns``, the same clock as this script).

Load: ``--hosts`` simulated hosts (``hostpulse.sim``: ~130-150 series each) post one snapshot
every ``--interval`` seconds over HTTP (protobuf + gzip, one host per request with its own agent
key, requests spread evenly over the interval, 4 keep-alive connections); their CPU is capped at
85 % so that only the breaches fire. Every ``--every`` seconds one host (a different one each
time) sends an extra snapshot of its whole series table with CPU at 97 %, in a request of its own
on its own connection. Latency = receiver arrival - the moment the request was written to the
socket (on loopback, the moment it reaches the server's socket; the server's queueing, decoding,
durable write, rule evaluation and the webhook POST are all inside it). Also shown: arrival - the
moment the 2xx came back (what happens after the ingest is acknowledged).

Reference, same run: a direct POST of a similar body to the same receiver.

    python bench/alert_latency.py --hosts 1000 --breaches 60 --every 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gzip
import itertools
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RawClient,
    append_doc,
    bench_args,
    cpu_seconds,
    enroll_all_async,
    our_server,
    pb_field,
)

from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.model import SimHost
from hostpulse.sim.push import make_hosts

RULE = "cpu_now"
MAX_INFLIGHT = 64  # feed requests queued at once; past it the feed waits (and falls behind)
INGEST = "/api/v1/ingest"
BASE_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}

RECEIVER = r"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = threading.Lock()  # one line per request: concurrent handlers must not interleave
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.time_ns()
        try:
            doc = json.loads(body)
            ids = [a["host"] for a in doc.get("alerts", [])] if doc.get("kind") == "firing" else []
        except ValueError:
            doc, ids = {}, []
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        with out:
            line = {"t": now, "hosts": ids, "rule": doc.get("rule_id"), "kind": doc.get("kind")}
            print(json.dumps(line), flush=True)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def ingest_headers(key: str) -> dict[str, str]:
    """Headers of an ingest request for one host: its own agent key."""
    return {**BASE_HEADERS, "Authorization": f"Bearer {key}"}


class Receiver:
    """The webhook receiver: a separate process that stamps each request on arrival;
    ``arrivals[(rule, host)]`` is the first firing notification naming the host."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/hook"
        self.arrivals: dict[tuple[str, str], int] = {}
        self.received: collections.Counter[tuple[str, str]] = collections.Counter()
        """Every notification received, by (rule, kind): what else the channel carried."""
        self.got = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                doc = json.loads(line)
            except ValueError:
                print(f"receiver: unreadable line {line[:200]!r}", file=sys.stderr)
                continue
            with self.got:
                self.received[(str(doc["rule"]), str(doc.get("kind")))] += 1
                for host in doc["hosts"]:
                    self.arrivals.setdefault((doc["rule"], host), doc["t"])
                self.got.notify_all()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def alerts_yml(path: Path, hook: str) -> Path:
    path.write_text(
        f"""
allow_networks: ["127.0.0.0/8"]
channels:
  - id: hook
    type: webhook
    url: {hook}
rules:
  - id: {RULE}
    metric: cpu_busy_percent
    op: ">"
    critical: 90
    channels: [hook]
"""
    )
    return path


class Fleet:
    """The simulated hosts' requests: each host's identity and series table encoded once,
    ``ROWS`` snapshots of its values computed up front (so the load generator costs ~0.5 ms
    per request, not ~6 ms: on a busy machine it could not keep the nominal rate), reported
    in turn with a fresh timestamp (CPU capped at 85 %)."""

    ROWS = 4

    def __init__(self, hosts: list[SimHost], interval: float, keys: dict[str, str]) -> None:
        self.hosts = hosts
        self.keys = keys
        self.heads = [
            HostBatch(host=host_message(h, interval), series=series_defs(h)).SerializeToString()
            for h in hosts
        ]
        self.busy = [h.series.index(("cpu_busy_percent", ())) for h in hosts]
        self.seq = [0] * len(hosts)
        start = time.time_ns() // 1_000_000
        stamps = np.array([start + int(k * interval * 1000) for k in range(self.ROWS)])
        self.rows = [h.block(stamps.astype(np.int64)).tolist() for h in hosts]

    def _batch(self, i: int, ts_ms: int, cpu: float | None) -> bytes:
        vals = list(self.rows[i][self.seq[i] % self.ROWS])
        b = self.busy[i]
        vals[b] = min(float(vals[b]), 85.0) if cpu is None else cpu
        snap = Snapshot(
            timestamp_ms=ts_ms,
            series_index=range(len(vals)),
            values=vals,
            sequence=self.seq[i],
        ).SerializeToString()
        self.seq[i] += 1
        return pb_field(0x0A, self.heads[i] + pb_field(0x1A, snap))

    def request(self, host_url: str, i: int, ts_ms: int, cpu: float | None) -> bytes:
        """One host's report (a key pushes only for its own host)."""
        body = gzip.compress(self._batch(i, ts_ms, cpu), 1)
        headers = ingest_headers(self.keys[self.hosts[i].host_id])
        return RawClient.build("POST", INGEST, host_url, headers, body)


async def feed(
    url: str,
    fleet: Fleet,
    interval: float,
    stop: asyncio.Event,
    failures: list[str],
) -> int:
    """Every host reports once per ``interval`` in its own request, requests spread evenly;
    returns the number of requests sent."""
    host, port = url.removeprefix("http://").split(":")
    conns = [RawClient(host, int(port)) for _ in range(4)]
    gap = interval / len(fleet.hosts)
    sent = 0
    inflight: set[asyncio.Task[None]] = set()

    async def one(slot: int, raw: bytes) -> None:
        conn = conns[slot]
        try:
            status, body = await conn.send(raw)
        except (OSError, asyncio.IncompleteReadError) as exc:
            # the server closed the connection (e.g. after a 5xx): count it, open a new one
            failures.append(f"connection: {type(exc).__name__}")
            if conns[slot] is conn:
                conns[slot] = RawClient(host, int(port))
                await conn.close()
            return
        if status >= 300:
            failures.append(f"{status} {body[:200]!r}")

    start = time.monotonic()
    while not stop.is_set():
        ts = (time.time_ns() // 10_000_000) * 10  # whole 10 ms: breaches use other ms
        raw = fleet.request(f"{host}:{port}", sent % len(fleet.hosts), ts, None)
        task = asyncio.create_task(one(sent % len(conns), raw))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
        sent += 1
        delay = start + sent * gap - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        else:  # behind schedule (a busy machine): still let the sends run, and bound them
            await asyncio.sleep(0)
            if len(inflight) >= MAX_INFLIGHT:
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
    if inflight:
        await asyncio.wait(inflight, timeout=30)
    for c in conns:
        await c.close()
    return sent


async def run(args: argparse.Namespace, rx: Receiver, url: str, pid: int) -> dict[str, Any]:
    hosts = make_hosts(args.hosts, seed=11)
    fleet = Fleet(hosts, args.interval, await enroll_all_async(url, [h.host_id for h in hosts]))
    breach = random.Random(7).sample(range(args.hosts), args.breaches)
    # Reference: a direct POST of a similar body to the same receiver.
    ref: list[float] = []
    async with httpx.AsyncClient() as client:
        for k in range(20):
            t0 = time.time_ns()
            body = {"kind": "firing", "rule_id": "ref", "alerts": [{"host": f"ref{k}"}]}
            await client.post(rx.url, json=body)
            with rx.got:
                rx.got.wait_for(lambda k=k: ("ref", f"ref{k}") in rx.arrivals, 5)
            ref.append((rx.arrivals[("ref", f"ref{k}")] - t0) / 1e6)
    stop = asyncio.Event()
    failures: list[str] = []
    feed_t0 = time.monotonic()
    feeder = asyncio.create_task(feed(url, fleet, args.interval, stop, failures))
    await asyncio.sleep(2 * args.interval)  # every host has reported twice
    host, port = url.removeprefix("http://").split(":")
    conn = RawClient(host, int(port))
    sent: dict[str, tuple[int, int]] = {}  # host -> (written, answered) ns
    cpu0, t_cpu = cpu_seconds(pid), time.monotonic()
    try:
        for i in breach:
            ts = (time.time_ns() // 10_000_000) * 10 + 3
            raw = fleet.request(f"{host}:{port}", i, ts, 97.0)
            t0 = time.time_ns()
            status, body = await conn.send(raw)
            t1 = time.time_ns()
            if status >= 300:
                failures.append(f"breach {status} {body[:200]!r}")
                continue
            sent[hosts[i].host_id] = (t0, t1)
            await asyncio.sleep(args.every)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with rx.got:
                if all((RULE, h) in rx.arrivals for h in sent):
                    break
            await asyncio.sleep(0.1)
    finally:
        server_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t_cpu)
        stop.set()
        feed_s = time.monotonic() - feed_t0
        requests = await feeder
        await conn.close()
    got = {h: rx.arrivals[(RULE, h)] for h in sent if (RULE, h) in rx.arrivals}
    start_ns = min((t0 for t0, _ in sent.values()), default=0)
    each = [
        (
            (t0 - start_ns) / 1e9,
            h,
            (got[h] - t0) / 1e6 if h in got else None,
            (t1 - t0) / 1e6,
            (got[h] - t1) / 1e6 if h in got else None,
        )
        for h, (t0, t1) in sorted(sent.items(), key=lambda item: item[1][0])
    ]
    lat = sorted((got[h] - sent[h][0]) / 1e6 for h in got)
    after = sorted((got[h] - sent[h][1]) / 1e6 for h in got)
    if len(lat) < 2:
        raise RuntimeError(f"only {len(lat)} notifications arrived; failures: {failures[:3]}")
    q = statistics.quantiles(lat, n=20, method="inclusive")
    qa = statistics.quantiles(after, n=20, method="inclusive")
    return {
        "breaches": len(sent),
        "missing": len(sent) - len(got),
        "p50_ms": statistics.median(lat),
        "p95_ms": q[18],
        "max_ms": lat[-1],
        "after_p50_ms": statistics.median(after),
        "after_p95_ms": qa[18],
        "ref_p50_ms": statistics.median(ref),
        "requests": requests,
        "feed_rate": requests / feed_s,
        "failures": len(failures),
        "failure_kinds": collections.Counter(f[:60] for f in failures).most_common(5),
        "server_cpu": server_cpu,
        "each": each,
        "latencies": lat,
    }


def breach_table(each: list[tuple[float, str, float | None, float, float | None]]) -> str:
    """One line per breach, in the order sent: when (s after the first), the host, the total
    latency split into 'ingest answered' and 'after the 2xx', so a tail shows where it is."""
    rows = [" at s   host      total ms   ingest 2xx ms   after 2xx ms"]
    for at, host, total, ingest, after in each:
        t = "missing" if total is None else f"{total:8.1f}"
        a = "" if after is None else f"{after:8.1f}"
        rows.append(f"{at:6.1f}  {host:<8}  {t:>8}   {ingest:13.1f}   {a:>12}")
    return "\n".join(rows)


BUCKETS_MS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def histogram(latencies: list[float]) -> str:
    """Counts of breaches per latency bucket, with a bar per bucket."""
    edges = [0.0, *BUCKETS_MS, float("inf")]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        n = sum(1 for v in latencies if lo <= v < hi)
        label = f">= {lo:g} ms" if hi == float("inf") else f"{lo:g}-{hi:g} ms"
        rows.append(f"{label:>14}  {n:4d}  {'#' * n}")
    return "\n".join(rows)


def main() -> None:
    parser = bench_args(__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--breaches", type=int, default=60)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between breaches")
    parser.add_argument("--server-log", type=Path, help="copy the server's log here at the end")
    args = parser.parse_args()
    rx = Receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
            root = Path(tmp)
            cfg = alerts_yml(root / "alerts.yml", rx.url)
            with our_server(root / "data", root / "server.log", "--alerts-config", str(cfg)) as (
                url,
                proc,
            ):
                try:
                    r = asyncio.run(run(args, rx, url, proc.pid))
                finally:
                    if args.server_log is not None:
                        shutil.copyfile(root / "server.log", args.server_log)
    finally:
        rx.stop()
    lines = [
        f"{args.hosts} simulated hosts posting every {args.interval:g} s over HTTP "
        f"({r['requests']:.0f} feed requests, {r['feed_rate']:.0f}/s of the nominal "
        f"{args.hosts / args.interval:.0f}/s, {r['failures']:.0f} refused; server CPU "
        f"{100 * r['server_cpu']:.0f} % of a core during the breaches); {r['breaches']:.0f} "
        f"breaches {args.every:g} s apart, {r['missing']:.0f} not delivered.",
        "",
        "```",
        f"breaching request sent -> webhook received   P50 {r['p50_ms']:7.1f} ms   "
        f"P95 {r['p95_ms']:7.1f} ms   max {r['max_ms']:7.1f} ms   (target P95 <= 2000 ms)",
        f"ingest 2xx received    -> webhook received   P50 {r['after_p50_ms']:7.1f} ms   "
        f"P95 {r['after_p95_ms']:7.1f} ms",
        f"reference: direct POST to the same receiver  P50 {r['ref_p50_ms']:7.1f} ms",
        "```",
    ]
    text = "\n".join(lines)
    print(breach_table(r["each"]))
    print()
    print("latency (breaching request sent -> webhook received), breaches per bucket:")
    print(histogram(r["latencies"]))
    print()
    print(text)
    if r["failure_kinds"]:
        print("refused or failed feed requests, most common:", r["failure_kinds"])
    if not args.no_doc:
        append_doc("Alert latency over HTTP", "python " + " ".join(sys.argv), text)
    if args.json is not None:  # for bench/all.py
        from _common import write_json

        write_json(args.json, r)


if __name__ == "__main__":
    main()
