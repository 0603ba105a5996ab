"""Scale-out: ingest through HAProxy onto VictoriaMetrics with 1, 2 and 3 ``hostpulse server``
replicas, and query latency through hostpulse on VictoriaMetrics beside the embedded store and
beside VictoriaMetrics queried directly; all in one run on one machine.

The system is the one ``docs/scale-out.md`` describes, as real processes on loopback (the
whole-system test's ``tests/e2e/scalekit.py``): replicas on one PostgreSQL database (created
and dropped here), one Redis database number (``--redis-db``, flushed before and after), a
Debian ``victoria-metrics`` (``-dedup.minScrapeInterval=1ms``) and Debian's ``haproxy`` with
the shipped ``deploy/haproxy/haproxy.cfg`` listing the first 1, 2, then 3 replicas. Only the
replicas measured run: the second starts after the 1-replica rounds, the third after the
2-replica rounds (a replica that runs evaluates the alerts of its share of the hosts, on
batches the others pass it through Redis, and its CPU would be left out of the figure).

Ingest: the requests of ``bench/ingest.py`` (simulated hosts, ~140 series each, one host per
request with its own agent key, ~``--samples-per-request`` samples), pre-built, sent over
``--clients`` keep-alive connections; each replica count gets its own rounds (later
timestamps, the hosts known already: the first round is sent through HAProxy and to every
replica directly, untimed, so that every replica has met every host as in operation).
Figures: samples/s, hostpulse's CPU-seconds per sample (every replica plus HAProxy, and
HAProxy's share of it) and VictoriaMetrics' CPU per sample behind it. Beside them
VictoriaMetrics' own remote-write ingest of the same samples (``/api/v1/write``, prompb +
snappy, about 500 samples a request): its ceiling here.

Queries: ``--deep-hosts`` hosts get ``--history-days`` days at ``--history-interval`` seconds
(back-filled oldest first through the API, as agents coming back would) into hostpulse on
VictoriaMetrics (through HAProxy) and into an embedded ``hostpulse server``; then P50/P95 of
``--repeat`` queries each, round-robin: current values of a host, 24 h of
``cpu_busy_percent`` at 60 s, 30 days at 1 h; VictoriaMetrics directly with the PromQL
hostpulse sends it (``{host_id=...}`` at the newest time; ``avg_over_time`` per step).

    python bench/scale_out.py --hosts 1000 --rounds 12 --history-interval 5

Figures measured on a machine shared with other jobs are not comparable with a quiet run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests" / "e2e"))  # the whole-system test's processes

from _common import (  # noqa: E402
    SERVER_ENV,
    admin_headers,
    bench_args,
    cpu_seconds,
    enroll_all,
    enroll_all_async,
    our_server,
    percentile,
    report,
    write_json,
)
from _prom import WRITE_HEADERS  # noqa: E402
from _vm import victoria_metrics  # noqa: E402
from ingest import Headers, Load, build, drive  # noqa: E402
from query import timed  # noqa: E402
from scalekit import HAProxy, Replica  # noqa: E402

from hostpulse.sim.model import SimHost, make_profile  # noqa: E402
from hostpulse.sim.push import backfill, make_hosts  # noqa: E402

PG_PORT, PG_USER = 5432, "postgres"
HOST_LABEL = "host_id"
DAY_S = 86_400


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=PG_PORT, user=PG_USER, database="postgres", timeout=10
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def redis_counters(client: redis.Redis) -> tuple[int, int]:
    """(commands processed, network bytes in + out) of the whole Redis server."""
    info = client.info("stats")
    return int(info["total_commands_processed"]), int(
        info["total_net_input_bytes"] + info["total_net_output_bytes"]
    )


async def pg_counters(db: str) -> tuple[int, int]:
    """(transactions committed, rows inserted + updated + deleted) in database ``db``."""
    conn = await asyncpg.connect(
        host="127.0.0.1", port=PG_PORT, user=PG_USER, database="postgres", timeout=10
    )
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS rows "
            "FROM pg_stat_database WHERE datname = $1",
            db,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["xact_commit"]), int(row["rows"])


def ingest_round(
    url: str,
    path: str,
    load: Load,
    pids: list[int],
    vm_pid: int,
    headers: Headers,
    ours: bool,
    side: tuple[redis.Redis, str] | None = None,
    warm: Sequence[str] = (),
    lb_pid: int | None = None,
) -> dict[str, float]:
    """Send the load's timed rounds (after round 0, first contact, sent through ``url`` and to
    each of ``warm`` directly: every replica has met every host, as in operation); the
    figures. ``side``: also count Redis' and PostgreSQL's work per ingest request (the Redis
    server and the database are this run's alone only as far as nothing else uses them)."""
    rounds = load.ours if ours else load.prom
    for target in (url, *warm):
        asyncio.run(drive(target, path, rounds[:1], headers))
    cpu0 = [cpu_seconds(p) for p in pids]
    vm0 = cpu_seconds(vm_pid)
    if side is not None:
        r0, p0 = redis_counters(side[0]), asyncio.run(pg_counters(side[1]))
    t0 = time.perf_counter()
    ok, failed = asyncio.run(drive(url, path, rounds[1:], headers))
    wall = time.perf_counter() - t0
    spent = {p: cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)}
    cpu = sum(spent.values())
    extra: dict[str, float] = {}
    if side is not None:
        r1, p1 = redis_counters(side[0]), asyncio.run(pg_counters(side[1]))
        requests = sum(len(c) for rnd in rounds[1:] for c in rnd)
        extra = {
            "requests": requests,
            "redis_commands_per_request": (r1[0] - r0[0]) / requests,
            "redis_bytes_per_request": (r1[1] - r0[1]) / requests,
            "pg_transactions_per_request": (p1[0] - p0[0]) / requests,
            "pg_rows_per_request": (p1[1] - p0[1]) / requests,
            "requests_per_s": requests / wall,
        }
    return {
        **extra,
        "samples": ok,
        "failed": failed,
        "seconds": wall,
        "samples_per_s": ok / wall,
        "hostpulse_cpu_us_per_sample": 1e6 * cpu / max(ok, 1),
        "haproxy_cpu_us_per_sample": 1e6 * spent.get(lb_pid or -1, 0.0) / max(ok, 1),
        "vm_cpu_us_per_sample": 1e6 * (cpu_seconds(vm_pid) - vm0) / max(ok, 1),
    }


def history_paths(host: str, now_s: int) -> dict[str, tuple[str, str]]:
    """(hostpulse path, VictoriaMetrics path) of each query."""
    sel = f'{HOST_LABEL}="{host}"'
    out = {
        "current": (
            f"/api/v1/hosts/{host}/current",
            "/api/v1/query?query=" + quote(f"{{{sel}}}") + f"&time={now_s}",
        )
    }
    for name, span, step in (("24 h history", DAY_S, 60), ("30-day history", 30 * DAY_S, 3600)):
        ours = (
            f"/api/v1/hosts/{host}/metrics/cpu_busy_percent/history?start="
            f"{(now_s - span) * 1000}&end={now_s * 1000}&step={step}s"
        )
        theirs = (
            "/api/v1/query_range?query="
            + quote(f"avg_over_time(node_cpu_busy_percent{{{sel}}}[{step}s])")
            + f"&start={now_s - span}&end={now_s}&step={step}"
        )
        out[name] = (ours, theirs)
    return out


def deep_hosts(count: int) -> list[SimHost]:
    """Hosts with history to query (not the ingest hosts: ``sim-100000`` on)."""
    return [SimHost(make_profile(100_000 + i, 7), 7) for i in range(count)]


async def fill_history(url: str, hosts: list[SimHost], days: float, interval: float) -> int:
    """Back-fill ``days`` of history of ``hosts`` through ``url``'s ingest API (oldest first):
    samples acknowledged."""
    keys = await enroll_all_async(url, [h.host_id for h in hosts])
    end_ms = int(time.time() * 1000) // 1000 * 1000
    start_ms = end_ms - int(days * DAY_S * 1000)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        stats = await backfill(client, hosts, start_ms, end_ms, interval, keys=keys, chunk=120)
    if stats.failures:
        print(f"  {stats.failures} back-fill requests failed at {url}", file=sys.stderr)
    return stats.samples


def compacted(url: str, timeout: float = 600.0) -> None:
    """Wait until the embedded store compacted the back-fill into blocks and rollups (its
    compaction lag under an hour), as it would be in operation; a query of 30 days otherwise
    reads raw samples from the head."""
    headers = admin_headers(url)
    deadline = time.monotonic() + timeout
    lag = float("inf")
    while time.monotonic() < deadline:
        for line in httpx.get(f"{url}/metrics", headers=headers, timeout=60).text.splitlines():
            if line.startswith("hostpulse_store_compaction_lag_seconds"):
                lag = float(line.split()[-1])
        if 0 < lag < 3600:
            return
        time.sleep(2)
    print(f"  the embedded store's compaction lag is still {lag:.0f} s", file=sys.stderr)


def main() -> None:
    ap = bench_args(__doc__)
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=12, help="snapshots per host per replica count")
    ap.add_argument("--samples-per-request", type=int, default=500)
    ap.add_argument("--clients", type=int, default=16, help="concurrent connections")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--deep-hosts", type=int, default=2, help="hosts with history to query")
    ap.add_argument("--history-days", type=float, default=30.0)
    ap.add_argument("--history-interval", type=float, default=60.0, help="seconds")
    ap.add_argument("--repeat", type=int, default=100, help="queries of each kind")
    ap.add_argument("--redis-db", type=int, default=15)
    args = ap.parse_args()

    began = time.perf_counter()
    db = f"hostpulse_bench_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{db}"'))
    rds = redis.Redis(host="127.0.0.1", port=6379, db=args.redis_db)
    rds.flushdb()
    ingest: dict[str, dict[str, float]] = {}
    queries: dict[str, list[tuple[float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            root = Path(tmp)
            (root / "vm").mkdir()
            secret = root / "signing-secret"
            secret.write_text(secrets.token_hex(32))
            secret.chmod(0o600)
            with victoria_metrics(root / "vm", root / "vm.log", "-dedup.minScrapeInterval=1ms") as (
                vm_url,
                vm_proc,
            ):
                env = {
                    **SERVER_ENV,
                    "HOSTPULSE_DATABASE_URL": f"postgresql://{PG_USER}@127.0.0.1:{PG_PORT}/{db}",
                    "HOSTPULSE_REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
                    "HOSTPULSE_TSDB_URL": vm_url,
                    "HOSTPULSE_SIGNING_SECRET_FILE": str(secret),
                    "HOSTPULSE_RETENTION_RAW": f"{args.history_days + 1:g}d",
                    "HOSTPULSE_LOG_LEVEL": "warning",
                }
                replicas = [Replica(f"replica{i}", root, env) for i in range(1, args.replicas + 1)]
                try:
                    replicas[0].start()  # the others join when their replica count is measured
                    run_ingest(args, root, replicas, vm_url, vm_proc.pid, ingest, (rds, db))
                    run_queries(args, root, replicas, vm_url, queries)
                finally:
                    for r in replicas:
                        r.stop()
    finally:
        rds.flushdb()
        rds.close()
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    lines = [
        f"{args.hosts} hosts x ~140 series, {args.rounds} rounds per replica count, "
        f"{args.clients} connections; whole run {time.perf_counter() - began:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    ]
    lines.append(
        f"{'ingest':<28} {'samples/s':>10} {'hostpulse CPU us/sample':>24} "
        f"{'of which HAProxy':>17} {'VictoriaMetrics CPU us/sample':>30} {'failed':>7}"
    )
    for name, f in ingest.items():
        mine = name.startswith("hostpulse")
        ours = f"{f['hostpulse_cpu_us_per_sample']:.2f}" if mine else "-"
        lb_share = f"{f['haproxy_cpu_us_per_sample']:.2f}" if mine else "-"
        lines.append(
            f"{name:<28} {f['samples_per_s']:>10,.0f} {ours:>24} {lb_share:>17} "
            f"{f['vm_cpu_us_per_sample']:>30.2f} {f['failed']:>7.0f}"
        )
    lines.append(
        f"{'query (P50 / P95 ms)':<28} {'hostpulse on VM':>18} {'embedded store':>18} "
        f"{'VM directly':>18}"
    )
    for name, cells in queries.items():
        shown = [f"{p50:.1f} / {p95:.1f}" for p50, p95 in cells]
        lines.append(f"{name:<28} {shown[0]:>18} {shown[1]:>18} {shown[2]:>18}")
    last = ingest.get(f"hostpulse, {args.replicas} replica{'s' if args.replicas > 1 else ''}")
    if last is not None and "requests" in last:
        lines.append(
            f"per ingest request ({last['requests']:.0f} requests, "
            f"{last['samples'] / last['requests']:.0f} samples each, {args.replicas} replicas): "
            f"Redis {last['redis_commands_per_request']:.1f} commands and "
            f"{last['redis_bytes_per_request'] / 1024:.1f} KiB of traffic; PostgreSQL "
            f"{last['pg_transactions_per_request']:.2f} transactions, "
            f"{last['pg_rows_per_request']:.2f} rows written"
        )
    report("Scale-out: replicas behind HAProxy on VictoriaMetrics", lines, args.no_doc)
    if args.json is not None:
        write_json(
            args.json,
            {
                "ingest": ingest,
                "queries": {
                    n: {
                        s: {"p50_ms": a, "p95_ms": b}
                        for s, (a, b) in zip(("hostpulse_vm", "embedded", "vm"), c, strict=True)
                    }
                    for n, c in queries.items()
                },
            },
        )


def run_ingest(
    a: argparse.Namespace,
    root: Path,
    replicas: list[Replica],
    vm_url: str,
    vm_pid: int,
    out: dict[str, dict[str, float]],
    side: tuple[redis.Redis, str],
) -> None:
    start_ms = int(time.time() * 1000) // 1000 * 1000 - 3 * 3600 * 1000
    hosts = [h.host_id for h in make_hosts(a.hosts)]
    keys = enroll_all(replicas[0].url, hosts)

    def headers(host: str) -> dict[str, str]:
        return {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {keys[host]}",
        }

    for n in range(1, len(replicas) + 1):
        if n > 1:  # a replica that is running evaluates its share of the hosts' alerts: only
            # the replicas measured run, so that none does work outside the figure
            replicas[n - 1].start()
            joined(replicas[:n])
        load = build(a.hosts, a.rounds, a.samples_per_request, a.clients, start_ms)
        start_ms += a.rounds * 5000 + 60_000  # the next replica count's rounds come later
        (root / f"lb{n}").mkdir()
        lb = HAProxy(root / f"lb{n}", [r.port for r in replicas[:n]])
        name = f"hostpulse, {n} replica{'s' if n > 1 else ''}"
        try:
            pids = [r.pid for r in replicas[:n]] + [lb.pid]
            out[name] = ingest_round(
                lb.url,
                "/api/v1/ingest",
                load,
                pids,
                vm_pid,
                headers,
                True,
                side,
                warm=[r.url for r in replicas[:n]],
                lb_pid=lb.pid,
            )
        finally:
            lb.stop()
        print(f"  {name}: {out[name]}", flush=True)
        if n == len(replicas):
            out["VictoriaMetrics remote write"] = ingest_round(
                vm_url, "/api/v1/write", load, [], vm_pid, lambda h: WRITE_HEADERS, ours=False
            )


def joined(replicas: list[Replica], timeout: float = 60.0) -> None:
    """Wait until every replica counts all of ``replicas`` as members (the alert ownership
    has moved before the measured rounds)."""
    signed_in = [(r.url, admin_headers(r.url)) for r in replicas]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = []
        for url, headers in signed_in:
            text = httpx.get(f"{url}/metrics", headers=headers, timeout=30).text
            for line in text.splitlines():
                if line.startswith("hostpulse_cluster_replicas"):
                    counts.append(float(line.split()[-1]))
        if counts and all(c == len(replicas) for c in counts):
            return
        time.sleep(0.5)
    print(f"  not every replica sees {len(replicas)} members yet", file=sys.stderr)


def run_queries(
    a: argparse.Namespace,
    root: Path,
    replicas: list[Replica],
    vm_url: str,
    out: dict[str, list[tuple[float, float]]],
) -> None:
    (root / "lbq").mkdir()
    lb = HAProxy(root / "lbq", [r.port for r in replicas])
    try:
        os.environ["HOSTPULSE_MAINTENANCE_INTERVAL"] = "5"  # rollups soon after the back-fill
        with our_server(
            root / "embedded",
            root / "embedded.log",
            "--retention-raw",
            f"{a.history_days + 1:g}d",
        ) as (emb_url, _):
            for url in (lb.url, emb_url):
                t0 = time.perf_counter()
                hosts = deep_hosts(a.deep_hosts)  # the same values for both systems
                n = asyncio.run(fill_history(url, hosts, a.history_days, a.history_interval))
                print(f"  history: {n:,} samples into {url} in {time.perf_counter() - t0:.0f} s")
            os.environ.pop("HOSTPULSE_MAINTENANCE_INTERVAL")
            httpx.get(f"{vm_url}/internal/force_flush", timeout=120)
            compacted(emb_url)
            now_s = int(time.time())
            hd_vm, hd_emb = admin_headers(lb.url), admin_headers(emb_url)
            per_host = [history_paths(h.host_id, now_s) for h in deep_hosts(a.deep_hosts)]
            for name in per_host[0]:
                paths = [per_host[i % len(per_host)][name] for i in range(a.repeat)]
                targets = [
                    (lb.url, [p for p, _ in paths], hd_vm),
                    (emb_url, [p for p, _ in paths], hd_emb),
                    (vm_url, [q for _, q in paths], {}),
                ]
                asyncio.run(timed([(u, p[:5], h) for u, p, h in targets]))  # warm-up
                lat = asyncio.run(timed(targets))
                out[name] = [(percentile(x, 0.5), percentile(x, 0.95)) for x in lat]
    finally:
        lb.stop()


if __name__ == "__main__":
    main()
