"""Query latency over HTTP: hostpulse's API vs Prometheus's HTTP API, the same data in both.

Data: ``--hosts`` simulated hosts (~150 series each) with the last minute of samples, of which
``--deep-hosts`` also have ``--days`` of history at 5 s. The deep history is what a 24 h and a
30-day query read, and hostpulse keeps each host's data apart (blocks per host and window), so
the latency of a query depends on that host's data, not on how many other hosts have 7 days. Writing
7 days x 1,000 hosts x 150 series (18 billion samples) is out of reach of this machine in a
benchmark run; the figures say what was used.

hostpulse: the store is filled through its ``Store`` interface, maintained (compaction,
rollups), closed, then ``hostpulse server`` serves it. Prometheus: remote write, oldest first.
Queries, sequential, over one keep-alive connection to each server, alternating between the two
so that both see the same machine load; P50/P95 of ``--repeat`` requests:

- current: hostpulse ``GET /api/v1/hosts/{id}/current`` (all series of a host); Prometheus
  ``/api/v1/query?query={instance="{id}"}`` (the same series, newest values). Measured twice:
  "cold" is the first read of each host after the server started (hostpulse then loads the
  host's newest values from disk), then again as in steady operation.
- 24 h history, step 60 s: hostpulse ``.../metrics/cpu_busy_percent/history``; Prometheus
  ``query_range`` of ``node_cpu_busy_percent{instance=...}`` with ``avg_over_time`` per step.
- 30-day history, step 1 h: the same with a 30-day range (hostpulse answers from its 1-hour
  rollups; Prometheus from raw samples).

    python bench/query.py --hosts 1000 --deep-hosts 2 --days 7
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RawClient, admin_headers, append_doc, our_server, percentile
from _prom import WRITE_HEADERS, multi_write_request, prometheus, series_labels

from hostpulse import catalog
from hostpulse.protocol import HostBatch, IngestRequest, Snapshot
from hostpulse.server.config import ServerSettings
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.model import SimHost
from hostpulse.sim.push import make_hosts
from hostpulse.store import open_store

CHUNK = 120  # snapshots per host per write (10 minutes)


async def fill(fleet: list[SimHost], deep: int, days: float, data: Path, prom_url: str) -> int:
    """Write the same samples into our store (directly) and Prometheus (remote write)."""
    end_ms = (int(time.time() * 1000) // 5000) * 5000 - 30_000
    deep_start = end_ms - int(days * 86_400_000)
    recent_start = end_ms - 60_000
    store = open_store(ServerSettings(data_dir=data).store_url)  # where the server looks
    await store.start()
    host, port = prom_url.removeprefix("http://").split(":")
    conns = [RawClient(host, int(port)) for _ in range(4)]
    heads = {h.host_id: HostBatch(host=host_message(h, 5.0), series=series_defs(h)) for h in fleet}
    labels = {
        h.host_id: [
            series_labels(catalog.get(k).prom_name, {**dict(lab), "instance": h.host_id})
            for k, lab in h.series
        ]
        for h in fleet
    }
    total = 0
    failed = 0
    last_maint = time.monotonic()

    async def write(hosts: list[SimHost], ts: np.ndarray) -> None:
        nonlocal total, failed
        ts_list = ts.tolist()
        sends = []
        batches = []
        for i, h in enumerate(hosts):
            vals = h.block(ts)
            b = HostBatch()
            b.CopyFrom(heads[h.host_id])
            idx = list(range(vals.shape[1]))
            for r, tv in enumerate(ts_list):
                b.snapshots.append(
                    Snapshot(timestamp_ms=tv, series_index=idx, values=vals[r].tolist())
                )
            batches.append(b)
            body = multi_write_request(labels[h.host_id], ts_list, vals)
            raw = RawClient.build("POST", "/api/v1/write", host, WRITE_HEADERS, body)
            sends.append(conns[i % len(conns)].send(raw))
        for k in range(0, len(batches), 50):
            res = await store.ingest(IngestRequest(batches=batches[k : k + 50]), end_ms)
            total += res.accepted
        for status, text in await asyncio.gather(*sends):
            if status >= 300:
                failed += 1
                if failed <= 3:
                    print(f"  prometheus refused: {status} {text[:200]!r}", file=sys.stderr)

    step = CHUNK * 5000
    for t in range(deep_start, recent_start, step):
        await write(fleet[:deep], np.arange(t, min(recent_start, t + step), 5000, dtype=np.int64))
        if time.monotonic() - last_maint > 30:
            await store.maintain(int(time.time() * 1000))
            last_maint = time.monotonic()
    await write(fleet, np.arange(recent_start, end_ms + 1, 5000, dtype=np.int64))
    await store.maintain(int(time.time() * 1000))
    await store.close()
    for c in conns:
        await c.close()
    if failed:
        print(f"{failed} Prometheus writes refused", file=sys.stderr)
    return total


async def timed(
    url_a: str,
    paths_a: list[str],
    url_b: str,
    paths_b: list[str],
    headers_a: dict[str, str] | None = None,
) -> tuple[list[float], list[float]]:
    """Latencies (ms) of each list of GETs, alternating a and b so both see the same load;
    ``headers_a`` go with a's requests (hostpulse: a signed-in user's token)."""
    clients = []
    for url in (url_a, url_b):
        host, port = url.removeprefix("http://").split(":")
        clients.append((host, RawClient(host, int(port))))
    out: tuple[list[float], list[float]] = ([], [])
    for pa, pb in zip(paths_a, paths_b, strict=True):
        for k, p in enumerate((pa, pb)):
            host, conn = clients[k]
            raw = RawClient.build("GET", p, host, (headers_a or {}) if k == 0 else {}, b"")
            t0 = time.perf_counter()
            status, body = await conn.send(raw)
            out[k].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {p}: {status} {body[:300]!r}")
    for _, conn in clients:
        await conn.close()
    return out


def queries(
    fleet: list[SimHost], deep: int, repeat: int, now_s: int
) -> dict[str, tuple[list[str], list[str]]]:
    rnd = random.Random(1)
    cur_hosts = [rnd.choice(fleet).host_id for _ in range(repeat)]
    deep_ids = [h.host_id for h in fleet[:deep]]
    out: dict[str, tuple[list[str], list[str]]] = {}
    out["current"] = (
        [f"/api/v1/hosts/{h}/current" for h in cur_hosts],
        [
            "/api/v1/query?query=" + quote(f'{{instance="{h}"}}') + f"&time={now_s}"
            for h in cur_hosts
        ],
    )
    for name, span, step in (("24 h history", 86_400, 60), ("30-day history", 30 * 86_400, 3600)):
        hosts = [deep_ids[i % deep] for i in range(repeat)]
        ours = [
            f"/api/v1/hosts/{h}/metrics/cpu_busy_percent/history?start={(now_s - span) * 1000}"
            f"&end={now_s * 1000}&step={step}s"
            for h in hosts
        ]
        prom = [
            "/api/v1/query_range?query="
            + quote(f'avg_over_time(node_cpu_busy_percent{{instance="{h}"}}[{step}s])')
            + f"&start={now_s - span}&end={now_s}&step={step}"
            for h in hosts
        ]
        out[name] = (ours, prom)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--deep-hosts", type=int, default=2)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    fleet = make_hosts(args.hosts, seed=3)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        root = Path(tmp)
        (root / "tsdb").mkdir()
        with prometheus(root / "tsdb", root / "prom.log") as (purl, _p):
            t0 = time.perf_counter()
            n = asyncio.run(fill(fleet, args.deep_hosts, args.days, root / "ours", purl))
            print(f"wrote {n:,} samples to each in {time.perf_counter() - t0:.0f} s")
            now_s = int(time.time())
            qs = queries(fleet, args.deep_hosts, args.repeat, now_s)
            with our_server(root / "ours", root / "ours.log") as (ourl, _o):
                auth = admin_headers(ourl)
                for name, (ours, prom) in qs.items():
                    if name == "current":
                        # the first read of a host after a restart loads its newest values
                        # from disk; afterwards (agents pushing) they are in memory
                        o, p = asyncio.run(timed(ourl, ours, purl, prom, auth))
                        results["current, cold"] = {
                            "hostpulse": (percentile(o, 0.5), percentile(o, 0.95)),
                            "prometheus": (percentile(p, 0.5), percentile(p, 0.95)),
                        }
                    else:
                        asyncio.run(timed(ourl, ours[:5], purl, prom[:5], auth))  # warm-up
                    o, p = asyncio.run(timed(ourl, ours, purl, prom, auth))
                    results[name] = {
                        "hostpulse": (percentile(o, 0.5), percentile(o, 0.95)),
                        "prometheus": (percentile(p, 0.5), percentile(p, 0.95)),
                    }
    lines = [
        f"data: {args.hosts} hosts x ~150 series with the last minute; {args.deep_hosts} of them "
        f"with {args.days} days at 5 s; {n:,} samples in each system; {args.repeat} queries each",
        f"{'query':<16} {'hostpulse P50/P95 ms':>22} {'prometheus P50/P95 ms':>24}",
    ]
    for name, r in results.items():
        (o50, o95), (p50, p95) = r["hostpulse"], r["prometheus"]
        lines.append(f"{name:<16} {o50:>10.1f} / {o95:>8.1f} {p50:>12.1f} / {p95:>8.1f}")
    print("\n".join(lines))
    if not args.no_doc:
        append_doc(
            "Query latency",
            "python " + " ".join(sys.argv),
            "```\n" + "\n".join(lines) + "\n```",
        )


if __name__ == "__main__":
    main()
