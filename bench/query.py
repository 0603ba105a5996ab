"""Query latency over HTTP with 1,000 hosts that all have history: hostpulse's API vs
Prometheus's HTTP API.

Data (hostpulse): every one of ``--hosts`` simulated hosts (~130-150 series each, the agent's
catalog on a sim host: CPU per mode and core, memory, two filesystems, two disks, network
interfaces, processes, TCP states) has ``--days`` days of 1-minute rollups and
``--hour-days`` days of 1-hour rollups, plus the last minute of raw samples at 5 s written
through ``Store.ingest`` (so "current" is served as in operation). ``--deep-hosts`` of them
instead get their whole history as raw samples at 5 s through ``Store.ingest``, the store
building its rollups itself (compaction + merge), exactly as in operation.

Why the others are generated, and why that is equivalent for these queries: 7 days of raw
samples for 1,000 hosts x ~140 series is ~17 billion samples (~33 GB at 1.9 bytes a sample),
about 10 hours of store ingest on this machine. None of the three queries reads raw blocks:
the store answers a 24 h range at a 60 s step from its 1-minute tier and a 30-day range at a 1 h
step from its 1-hour tier (``pick_tier``), plus the head. So each generated host gets exactly
the rollup blocks the store would hold: one real day of its samples at 5 s is generated
(``SimHost.block``, all its series), aggregated by the store's own ``rollup.from_raw`` /
``rollup.bucket`` into 1-minute and 1-hour rows, encoded by the store's own ``codec.encode``
with the store's quantisation scales (``choose_scales``), one block per host, tier and day, as
``merge_rollups`` leaves them; that day's rows are reused (timestamps shifted) for every day of
the history, so the blocks have the real size, shape and compressibility. The deep hosts (real
path) are queried too, and their figures sit beside the generated hosts' as a check.

Prometheus has no rollups: the same 7 days for 1,000 hosts would be the same 17 billion raw
samples, out of reach here, so it gets the deep hosts' raw history (remote write, oldest first)
and every host's last minute, and is queried on the deep hosts. VictoriaMetrics gets the same
remote-write requests and the same queries (its HTTP API answers Prometheus's).

Queries: sequential, each over one keep-alive connection, round-robin between the systems so
that all see the same machine load; P50/P95 of ``--repeat`` requests each, hosts drawn at
random:

- current: hostpulse ``GET /api/v1/hosts/{id}/current`` (all series of a host); Prometheus
  ``/api/v1/query?query={instance="{id}"}`` (the same series, newest values). "cold" is the
  first read of each host after the server started (the host's newest values are read from
  disk), then again as in steady operation.
- 24 h history, step 60 s: hostpulse ``.../metrics/cpu_busy_percent/history``; Prometheus
  ``query_range`` of ``avg_over_time(node_cpu_busy_percent{instance=...}[60s])``.
- 30-day history, step 1 h: the same with a 30-day range.

Each history range ends at the second its request is sent, as a dashboard's "last 24 hours"
does: it moves on between requests. Both systems may answer a repeated range from what they
kept of earlier reads (VictoriaMetrics' rollup result cache, hostpulse's kept rows of stored
blocks); the random hosts are mostly first reads, the raw-path hosts repeated reads.

    python bench/query.py --hosts 1000 --days 7 --hour-days 30 --deep-hosts 2

A/B on one fill: ``--server-src ../main/src --rounds 3`` queries a server from this tree, then
one from the other tree's ``src``, three times over, on the same data (each server started
afresh); every line also gives the hostpulse server's CPU per hostpulse request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import (
    RawClient,
    admin_headers,
    bench_args,
    cpu_seconds,
    dir_size,
    our_server,
    percentile,
    report,
    write_json,
)
from _prom import SimFeed, prometheus
from _vm import victoria_metrics

from hostpulse.protocol import IngestRequest
from hostpulse.server.config import ServerSettings
from hostpulse.sim.model import SimHost, make_profile
from hostpulse.sim.push import make_hosts
from hostpulse.store import blocks, codec, open_store, rollup, schema
from hostpulse.store.base import Store
from hostpulse.store.exceptions import HeadFullError
from hostpulse.store.quantize import choose_scales

SEED = 3
CHUNK = 120  # snapshots per host per write (10 minutes)
DAY_MS = blocks.DAY_MS
LEVEL = 3  # the store's default zstd level


def query_headers(url: str) -> dict[str, str]:
    """Headers of every hostpulse query: a signed-in admin's token."""
    return admin_headers(url)


# --- generated rollup history --------------------------------------------------------------


def host_rollups(
    index: int,
    host_key: int,
    ids: list[int],
    kmax: list[int],
    lossy: list[bool],
    end_ms: int,
    minute_days: float,
    hour_days: float,
) -> list[dict[str, int | bytes]]:
    """The 1-minute and 1-hour blocks of one simulated host for the ``minute_days`` and
    ``hour_days`` before ``end_ms`` (one block per tier and day, as the store leaves them after
    merging). ``ids``/``kmax``/``lossy``: the store's series of the host, in ``SimHost.series``
    order. Runs in a worker process."""
    host = SimHost(make_profile(index, SEED), SEED)
    today = end_ms - end_ms % DAY_MS
    day_ts = np.arange(today - DAY_MS, today, 5000, dtype=np.int64)
    vals = host.block(day_ts)
    order = np.argsort(np.array(ids))
    sid = np.array(ids, dtype=np.int64)[order]
    vals = vals[:, order]
    scales = choose_scales(
        vals, np.array(kmax, dtype=np.int64)[order], np.array(lossy, dtype=np.bool_)[order]
    )
    minute = rollup.bucket(rollup.from_raw(day_ts, vals), rollup.MINUTE_MS)
    hour = rollup.bucket(minute, rollup.HOUR_MS)
    tiers = [
        (schema.Kind.MINUTE, minute, rollup.MINUTE_MS, end_ms - int(minute_days * DAY_MS)),
        (schema.Kind.HOUR, hour, rollup.HOUR_MS, end_ms - int(hour_days * DAY_MS)),
    ]
    out: list[dict[str, int | bytes]] = []
    for kind, rows, step, start in tiers:
        day = today
        while day + DAY_MS > start:
            shifted = rows.ts - (today - DAY_MS) + day
            keep = (shifted >= start - start % step) & (shifted + step <= end_ms)
            if keep.any():
                part = rollup.Rows(shifted, rows.count, rows.sum, rows.min, rows.max, rows.last)
                part = part.take(keep)
                stats = rollup.to_stats(part)
                data = codec.encode(part.ts, sid, stats, blocks.rollup_scales(scales, stats), LEVEL)
                out.append(
                    blocks.BlockRow(
                        host_key,
                        kind,
                        day,
                        int(part.ts[0]),
                        int(part.ts[-1]) + step,
                        int(keep.sum()) * len(sid),
                        data,
                    ).as_dict()
                )
            day -= DAY_MS
    return out


async def generate_history(
    store: Store,
    fleet: list[SimHost],
    first: int,
    end_ms: int,
    minute_days: float,
    hour_days: float,
    workers: int,
) -> int:
    """Rollup blocks for hosts ``fleet[first:]`` (already registered in ``store``), computed
    in ``workers`` processes and inserted as they come; returns the bytes written."""
    engine = store.engine  # type: ignore[attr-defined]
    heads = store.heads  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    written = 0
    done_hosts = 0

    async def store_rows(done: set[asyncio.Future[list[dict[str, int | bytes]]]]) -> None:
        nonlocal written, done_hosts
        for fut in done:
            rows = fut.result()
            written += sum(len(r["data"]) for r in rows)  # type: ignore[arg-type]
            async with engine.begin() as conn:
                await conn.execute(insert(schema.blocks), rows)
            done_hosts += 1
            if done_hosts % 100 == 0:
                print(f"  generated history of {done_hosts} hosts", flush=True)

    # a few hosts in flight at a time: each host's blocks are ~7 MB
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        inflight: set[asyncio.Future[list[dict[str, int | bytes]]]] = set()
        for i in range(first, len(fleet)):
            head = heads[fleet[i].host_id]
            col = {(c.metric, c.labels): c for c in head.columns}
            cols = [col[k] for k in fleet[i].series]
            inflight.add(
                loop.run_in_executor(
                    pool,
                    host_rollups,
                    i,
                    head.key,
                    [c.series_id for c in cols],
                    [c.kmax for c in cols],
                    [c.lossy for c in cols],
                    end_ms,
                    minute_days,
                    hour_days,
                )
            )
            if len(inflight) >= 2 * workers:
                done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                await store_rows(done)
        if inflight:
            done, _ = await asyncio.wait(inflight)
            await store_rows(done)
    return written


# --- raw samples through the store's write path ------------------------------------------------


async def fill(
    fleet: list[SimHost],
    deep: int,
    days: float,
    hour_days: float,
    workers: int,
    data: Path,
    refs: dict[str, str],
) -> tuple[int, int]:
    """Raw samples into our store and Prometheus (the deep hosts' history and everyone's last
    minute), then generated rollups for the other hosts; returns (raw samples, bytes of
    generated blocks)."""
    end_ms = (int(time.time() * 1000) // 5000) * 5000 - 30_000
    deep_start = end_ms - int(days * 86_400_000)
    recent_start = end_ms - 60_000
    store = open_store(ServerSettings(data_dir=data).store_url)  # where the server looks
    await store.start()
    feed = SimFeed(fleet, refs)
    total = 0
    last_maint = time.monotonic()

    async def write(hosts: list[SimHost], ts: np.ndarray) -> None:
        nonlocal total
        ts_list = ts.tolist()
        sends = []
        batches = []
        for i, h in enumerate(hosts):
            vals = h.block(ts)
            batches.append(feed.batch(h, ts_list, vals))
            sends.append(feed.send(i, h, ts_list, vals))
        for k in range(0, len(batches), 50):
            req = IngestRequest(batches=batches[k : k + 50])
            try:
                res = await store.ingest(req, end_ms)
            except HeadFullError:  # a host's head is at its budget: compact, then again
                await store.maintain(int(time.time() * 1000))
                res = await store.ingest(req, end_ms)
            total += res.accepted
        await feed.settle(sends)

    step = CHUNK * 5000
    for t in range(deep_start, recent_start, step):
        await write(fleet[:deep], np.arange(t, min(recent_start, t + step), 5000, dtype=np.int64))
        if time.monotonic() - last_maint > 30:
            await store.maintain(int(time.time() * 1000))
            last_maint = time.monotonic()
    await write(fleet, np.arange(recent_start, end_ms + 1, 5000, dtype=np.int64))
    await feed.close()
    for name, failed in feed.failed.items():
        if failed:
            print(f"{failed} {name} writes refused", file=sys.stderr)
    print(f"  raw samples written: {total:,}", flush=True)
    generated = await generate_history(store, fleet, deep, recent_start, days, hour_days, workers)
    await store.maintain(int(time.time() * 1000))
    await store.close()
    return total, generated


# --- queries --------------------------------------------------------------------------------


Path_ = str | Callable[[int], str]
"""A query's path, or a function of the time (seconds) it is sent at giving the path: a
range that ends "now" moves on, as a dashboard's does."""


async def timed(targets: list[tuple[str, list[Path_], dict[str, str]]]) -> list[list[float]]:
    """Latencies (ms) of each list of GETs (url, paths, headers), round-robin between the
    lists so that all see the same load."""
    clients = []
    for url, _, _ in targets:
        host, port = url.removeprefix("http://").split(":")
        clients.append((host, RawClient(host, int(port))))
    out: list[list[float]] = [[] for _ in targets]
    for i in range(max(len(p) for _, p, _ in targets)):
        for k, (_, paths, headers) in enumerate(targets):
            if i >= len(paths):
                continue
            host, conn = clients[k]
            p = paths[i]
            path = p(int(time.time())) if callable(p) else p
            raw = RawClient.build("GET", path, host, headers, b"")
            t0 = time.perf_counter()
            status, body = await conn.send(raw)
            out[k].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    for _, conn in clients:
        await conn.close()
    return out


def _ours_history(host: str, span: int, step: int) -> Callable[[int], str]:
    """The range ending when the request is sent (as a dashboard's "last 24 hours")."""
    return lambda now_s: (
        f"/api/v1/hosts/{host}/metrics/cpu_busy_percent/history?start={(now_s - span) * 1000}"
        f"&end={now_s * 1000}&step={step}s"
    )


def _prom_history(host: str, span: int, step: int) -> Callable[[int], str]:
    return lambda now_s: (
        "/api/v1/query_range?query="
        + quote(f'avg_over_time(node_cpu_busy_percent{{instance="{host}"}}[{step}s])')
        + f"&start={now_s - span}&end={now_s}&step={step}"
    )


QueryPaths = tuple[list[Path_], list[Path_], list[Path_]]  # ours random, ours deep, prom deep


def queries(fleet: list[SimHost], deep: int, repeat: int, now_s: int) -> dict[str, QueryPaths]:
    rnd = random.Random(1)
    deep_ids = [h.host_id for h in fleet[:deep]]
    rest = [h.host_id for h in fleet[deep:]]
    out: dict[str, QueryPaths] = {}
    cur = rnd.sample(rest, min(repeat, len(rest)))
    cur_deep = [deep_ids[i % deep] for i in range(repeat)]
    out["current"] = (
        [f"/api/v1/hosts/{h}/current" for h in cur],
        [f"/api/v1/hosts/{h}/current" for h in cur_deep],
        [
            "/api/v1/query?query=" + quote(f'{{instance="{h}"}}') + f"&time={now_s}"
            for h in cur_deep
        ],
    )
    for name, span, step in (("24 h history", 86_400, 60), ("30-day history", 30 * 86_400, 3600)):
        hosts = [rnd.choice(rest) for _ in range(repeat)]
        d = [deep_ids[i % deep] for i in range(repeat)]
        out[name] = (
            [_ours_history(h, span, step) for h in hosts],
            [_ours_history(h, span, step) for h in d],
            [_prom_history(h, span, step) for h in d],
        )
    return out


def answer_shape(url: str, headers: dict[str, str]) -> str:
    """What a history answer holds (tier, series, points), to show that the generated hosts'
    answers are as full as the raw-path hosts'."""
    body = httpx.get(url, headers=headers, timeout=30).json()
    series = body.get("series", [])
    points = sum(len(s.get("points", [])) for s in series)
    return f"tier {body.get('tier')}, {len(series)} series, {points} points"


@dataclass
class Round:
    """One system set's P50/P95 (ms) for one query kind, and the hostpulse server's CPU per
    hostpulse request of it."""

    latency: list[tuple[float, float]]
    cpu_ms: float


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def query_round(
    root: Path, qs: dict[str, QueryPaths], purl: str, vmurl: str, src: Path | None
) -> dict[str, Round]:
    """Every query kind against a freshly started hostpulse server (from ``src``, else this
    tree) on the filled data, Prometheus and VictoriaMetrics."""
    out: dict[str, Round] = {}
    with our_server(root / "ours", root / "ours.log", src=src) as (ourl, proc):
        hd = query_headers(ourl)
        for name in ("24 h history", "30-day history"):
            for label, path in (("random", qs[name][0][0]), ("raw-path", qs[name][1][0])):
                at = path(int(time.time())) if callable(path) else path
                print(f"  {name}, {label} host: {answer_shape(ourl + at, hd)}")
        for name, (ours, ours_deep, prom) in qs.items():
            targets = [
                (ourl, ours, hd),
                (ourl, ours_deep, hd),
                (purl, prom, {}),
                (vmurl, prom, {}),  # the same PromQL: VictoriaMetrics' API answers it
            ]
            if name == "current":
                # the first read of a host after a restart loads its newest values
                # from disk; afterwards (agents pushing) they are in memory
                cpu0 = cpu_seconds(proc.pid)
                lat = asyncio.run(timed(targets))
                cpu = (cpu_seconds(proc.pid) - cpu0) * 1000 / (len(ours) + len(ours_deep))
                out["current, cold"] = Round(
                    [(percentile(x, 0.5), percentile(x, 0.95)) for x in lat], cpu
                )
            else:
                asyncio.run(timed([(u, p[:5], h) for u, p, h in targets]))  # warm-up
            cpu0 = cpu_seconds(proc.pid)
            lat = asyncio.run(timed(targets))
            cpu = (cpu_seconds(proc.pid) - cpu0) * 1000 / (len(ours) + len(ours_deep))
            out[name] = Round([(percentile(x, 0.5), percentile(x, 0.95)) for x in lat], cpu)
    return out


def _keep_admin_password(path: Path) -> None:
    """The kept fill's first admin was created with the password of the run that filled it:
    that one, kept beside the data (0600), else this run's, kept for the next."""
    if path.exists():
        password = path.read_text()
        _common.ADMIN_PASSWORD = password
        _common.SERVER_ENV["HOSTPULSE_ADMIN_PASSWORD"] = password
    else:
        path.touch(mode=0o600)
        path.write_text(_common.ADMIN_PASSWORD)


def main() -> None:
    ap = bench_args(__doc__)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--deep-hosts", type=int, default=2, help="hosts with raw history")
    ap.add_argument("--days", type=float, default=7.0, help="raw / 1-minute history")
    ap.add_argument("--hour-days", type=float, default=30.0, help="1-hour history")
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--server-src",
        type=Path,
        action="append",
        metavar="SRC",
        help="run the query rounds against a server from this source tree (a checkout's src/, "
        "e.g. of main) as well; repeat for several; 'this tree' is always first",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="query rounds per server on the same data, servers alternating (A/B)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="keep the filled data (all three systems) in DIR, and query a fill already "
        "there instead of filling again (the same options; kept data ages, a fresh fill for "
        "the figures)",
    )
    args = ap.parse_args()
    fleet = make_hosts(args.hosts, seed=SEED)
    sources: list[Path | None] = [None, *(args.server_src or [])]
    runs: dict[str, dict[str, list[Round]]] = {}
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.data is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-query-")))
        else:
            root = args.data
            root.mkdir(parents=True, exist_ok=True)
        kept = root / "filled.json"
        if args.data is not None:
            _keep_admin_password(root / "admin-password")
        (root / "tsdb").mkdir(parents=True, exist_ok=True)
        (root / "vm").mkdir(exist_ok=True)
        with (
            prometheus(root / "tsdb", root / "prom.log") as (purl, _p),
            victoria_metrics(root / "vm", root / "vm.log") as (vmurl, _vm),
        ):
            if kept.exists():
                n, generated, fill_s = json.loads(kept.read_text())
                print(f"  querying the fill kept in {root}", flush=True)
            else:
                t0 = time.perf_counter()
                n, generated = asyncio.run(
                    fill(
                        fleet,
                        args.deep_hosts,
                        args.days,
                        args.hour_days,
                        args.workers,
                        root / "ours",
                        {"prometheus": purl, "victoriametrics": vmurl},
                    )
                )
                fill_s = time.perf_counter() - t0
                if args.data is not None:
                    kept.write_text(json.dumps([n, generated, fill_s]))
            db_bytes = dir_size(root / "ours")
            print(f"filled in {fill_s:.0f} s; hostpulse data {db_bytes / 2**30:.1f} GiB")
            now_s = int(time.time())
            qs = queries(fleet, args.deep_hosts, args.repeat, now_s)
            for rnd in range(args.rounds):
                for src in sources:
                    label = "this tree" if src is None else str(src)
                    print(f"  round {rnd + 1}, server from {label}: load {_load()}", flush=True)
                    got = query_round(root, qs, purl, vmurl, src)
                    for name, r in got.items():
                        runs.setdefault(label, {}).setdefault(name, []).append(r)
    total_s = time.perf_counter() - began
    lines = [
        f"data: {args.hosts} hosts x ~{sum(len(h.series) for h in fleet) // len(fleet)} series; "
        f"{args.hosts - args.deep_hosts} with generated 1-minute rollups for {args.days:g} days "
        f"and 1-hour rollups for {args.hour_days:g} days ({generated / 2**30:.1f} GiB of blocks),"
        f" {args.deep_hosts} with {args.days:g} days of raw samples at 5 s through the store; "
        f"every host's last minute raw; {n:,} raw samples in each system; hostpulse data "
        f"{db_bytes / 2**30:.1f} GiB; fill {fill_s:.0f} s, whole run {total_s:.0f} s; "
        f"{args.repeat} queries each",
        f"{'query':<16} {'hostpulse, random hosts':>24} {'hostpulse, raw-path hosts':>26} "
        f"{'prometheus, same hosts':>23} {'victoriametrics, same hosts':>28}",
        f"{'':<16} {'P50 / P95 ms':>24} {'P50 / P95 ms':>26} {'P50 / P95 ms':>23} "
        f"{'P50 / P95 ms':>28}",
    ]
    for label, by_name in runs.items():
        if len(runs) > 1:
            lines.append(f"server from {label}:")
        for name, rs in by_name.items():
            for k, r in enumerate(rs):
                cells = [f"{p50:.1f} / {p95:.1f}" for p50, p95 in r.latency]
                title = name if len(rs) == 1 else f"{name} #{k + 1}"
                lines.append(
                    f"{title:<16} {cells[0]:>24} {cells[1]:>26} {cells[2]:>23} {cells[3]:>28}"
                    f"   server CPU {r.cpu_ms:.2f} ms/query"
                )
    report("Query latency", lines, args.no_doc)
    if args.json is not None:
        systems = ("hostpulse", "hostpulse_raw_path", "prometheus", "victoriametrics")
        first = next(iter(runs.values()))
        write_json(
            args.json,
            {
                name: {
                    sys_: {"p50_ms": p50, "p95_ms": p95}
                    for sys_, (p50, p95) in zip(systems, rs[-1].latency, strict=True)
                }
                for name, rs in first.items()
            }
            | (
                {
                    "by_server": {
                        label: {
                            name: [
                                {"latency_ms": r.latency, "server_cpu_ms_per_query": r.cpu_ms}
                                for r in rs
                            ]
                            for name, rs in by_name.items()
                        }
                        for label, by_name in runs.items()
                    }
                }
                if len(runs) > 1 or args.rounds > 1
                else {}
            ),
        )


if __name__ == "__main__":
    main()
