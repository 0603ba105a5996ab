"""Store-level benchmarks of the embedded SQLite store (no HTTP):

* ingest: samples/s through ``Store.ingest`` for 10,000 hosts x 150 series, 4 snapshots per
  request, 64 requests in flight (group commit), after the hosts are registered; then the cost
  of compacting that head into blocks.
* storage: bytes per raw sample on disk after 24 h of simulated data for 200 hosts (blocks
  built by the store's own compaction and merge code, then the SQLite file is measured).
* query: P50/P95 of ``latest`` (current), ``query_range`` over 24 h and 30 days, with 7 days
  of data for 1,000 hosts (see ``--help`` for the shortcut used to build that database).

Run: ``.venv/bin/python bench/store_engine.py [ingest|storage|query|all] [--record]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import simdata

from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.store import SQLiteStore, open_store
from hostpulse.store import blocks as blk
from hostpulse.store.prepare import prepare
from hostpulse.store.quantize import resolution_k
from hostpulse.store.schema import Kind

T0 = 1_767_225_600_000
INTERVAL = 5000
ROOT = Path(__file__).resolve().parent.parent


def _snapshots(template: HostBatch, ts0: int, vals: np.ndarray) -> HostBatch:
    b = HostBatch()
    b.CopyFrom(template)
    idx = list(range(vals.shape[1]))
    for i in range(vals.shape[0]):
        s = b.snapshots.add(timestamp_ms=ts0 + i * INTERVAL)
        s.series_index.extend(idx)
        s.values.extend(vals[i].tolist())
    return b


async def _run_all(store: SQLiteStore, reqs: list[IngestRequest], inflight: int) -> int:
    sem = asyncio.Semaphore(inflight)
    accepted = 0

    async def one(r: IngestRequest) -> None:
        nonlocal accepted
        async with sem:
            res = await store.ingest(r, T0)
            accepted += res.accepted

    await asyncio.gather(*(one(r) for r in reqs))
    return accepted


async def bench_ingest(
    hosts: int, rounds: int, per_request: int, inflight: int
) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="hp-bench-ingest-"))
    pool = [
        simdata.values(T0 + np.arange(per_request * (rounds + 1)) * INTERVAL, s) for s in range(16)
    ]
    templates = [simdata.host_batch(f"host-{h:05d}") for h in range(hosts)]

    def build(r: int) -> list[IngestRequest]:
        out = []
        for h in range(hosts):
            vals = pool[h % 16][r * per_request : (r + 1) * per_request]
            ts0 = T0 + r * per_request * INTERVAL
            out.append(IngestRequest(batches=[_snapshots(templates[h], ts0, vals)]))
        return out

    store = open_store(work, clock=lambda: T0)
    await store.start()
    try:
        first = build(0)
        t = time.perf_counter()
        await _run_all(store, first, inflight)
        register_s = time.perf_counter() - t
        del first
        total = 0
        elapsed = 0.0
        for r in range(1, rounds + 1):
            reqs = build(r)
            t = time.perf_counter()
            total += await _run_all(store, reqs, inflight)
            elapsed += time.perf_counter() - t
        expected = hosts * 150 * per_request * rounds
        assert total == expected, (total, expected)
        await store.close()
        # restart: load hosts and series, replay the WAL (nothing was compacted)
        store = open_store(work, clock=lambda: T0)
        t = time.perf_counter()
        await store.start()
        restart_s = time.perf_counter() - t
        assert (await store.stats()).raw_samples == hosts * 150 * per_request * (rounds + 1)
    finally:
        await store.close()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "hosts": hosts,
        "samples": total,
        "ingest_samples_per_s": total / elapsed,
        "first_contact_s": register_s,
        "restart_with_wal_replay_s": restart_s,
    }


def _ids_kmax(store: SQLiteStore, host_id: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    head = store.heads[host_id]
    ids = np.array([c.series_id for c in head.columns], dtype=np.int64)
    kl = [resolution_k(c.metric) for c in head.columns]
    return head.key, ids, np.array([k for k, _ in kl]), np.array([lo for _, lo in kl])


async def _register(store: SQLiteStore, host_ids: list[str]) -> None:
    for i in range(0, len(host_ids), 100):
        req = IngestRequest(batches=[simdata.host_batch(h) for h in host_ids[i : i + 100]])
        await store.registrar.register(prepare(req), T0)


async def _write_host_days(store: SQLiteStore, host_id: str, days: int, seed: int) -> int:
    key, ids, kmax, lossy = _ids_kmax(store, host_id)
    samples = 0
    per_window = store.state.block_ms // INTERVAL
    for d in range(days):
        ts = T0 + d * 86_400_000 + np.arange(86_400_000 // INTERVAL, dtype=np.int64) * INTERVAL
        vals = simdata.values(ts, seed * 1000 + d)
        rows: list[blk.BlockRow] = []
        for w in range(0, len(ts), per_window):
            rows += blk.compact_window(
                key,
                int(ts[w]),
                ts[w : w + per_window],
                vals[w : w + per_window],
                ids,
                kmax,
                lossy,
                store.state.level,
            )
        samples += vals.size
        async with store.engine.begin() as conn:
            await store.compactor.insert_blocks(conn, rows)
    return samples


async def bench_storage(hosts: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="hp-bench-storage-"))
    store = open_store(work, clock=lambda: T0 + 86_400_000)
    await store.start()
    try:
        names = [f"host-{h:04d}" for h in range(hosts)]
        await _register(store, names)
        samples = 0
        t = time.perf_counter()
        for i, h in enumerate(names):
            samples += await _write_host_days(store, h, 1, i)
        build_s = time.perf_counter() - t
        store.state.watermark = T0 + 86_400_000
        await store.compactor.merge_partials()
        await store.compactor.reclaim()  # as maintain() does after merging
        async with store.engine.connect() as conn:
            sizes = {
                int(k): int(n)
                for k, n in (
                    await conn.exec_driver_sql(
                        "SELECT kind, sum(length(data)) FROM ts_blocks GROUP BY kind"
                    )
                ).all()
            }
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await store.close()
        on_disk = _du(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "hosts": hosts,
        "raw_samples": samples,
        "bytes_per_sample_file": on_disk / samples,
        "bytes_per_sample_raw_blocks": sizes.get(Kind.RAW, 0) / samples,
        "bytes_per_sample_minute": sizes.get(Kind.MINUTE, 0) / samples,
        "bytes_per_sample_hour": sizes.get(Kind.HOUR, 0) / samples,
        "compaction_samples_per_s": samples / build_s,
    }


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


async def bench_query(hosts: int, probes: int, days: int, reps: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="hp-bench-query-"))
    now = T0 + days * 86_400_000
    store = open_store(work, clock=lambda: now)
    await store.start()
    try:
        names = [f"host-{h:04d}" for h in range(hosts)]
        await _register(store, names)
        t = time.perf_counter()
        for i, h in enumerate(names[:probes]):
            await _write_host_days(store, h, days, i)
        store.state.watermark = now
        await store.compactor.merge_partials()
        # filler hosts: block rows with the real count, time ranges and group layout, but
        # 1 KiB placeholder payloads (the 20 GB of real payloads would not fit this machine's
        # shared disk); they make the index and the table as deep as with 1,000 real hosts.
        filler = os.urandom(1024)
        day = 86_400_000
        for h in names[probes:]:
            key = store.heads[h].key
            rows = []
            for w in range(T0, now, store.state.block_ms):
                rows.append((key, Kind.RAW, w, w, w + store.state.block_ms, 18000, filler))
            for d in range(T0, now, day):
                rows.append((key, Kind.MINUTE, d, d, d + day, 1440 * 150, filler))
                rows.append((key, Kind.HOUR, d, d, d + day, 24 * 150, filler))
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql(
                    "INSERT INTO ts_blocks (host_key, kind, group_ms, start_ms, end_ms, samples,"
                    " data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        # the newest minutes of each probe host are in the head, as on a running server
        for i, h in enumerate(names[:probes]):
            ts0 = now - 12 * INTERVAL
            vals = simdata.values(ts0 + np.arange(12) * INTERVAL, i)
            await store.ingest(
                IngestRequest(batches=[_snapshots(simdata.host_batch(h), ts0, vals)]), now
            )
        build_s = time.perf_counter() - t
        rng = np.random.default_rng(1)
        table = simdata.series_table()
        timings: dict[str, list[float]] = {"current": [], "24h": [], "30d": [], "6h_raw": []}
        for _ in range(reps):
            h = names[int(rng.integers(probes))]
            metric, labels = table[int(rng.integers(len(table)))]
            lab = dict(labels)
            cases = {
                "current": functools.partial(store.latest, h),
                "6h_raw": functools.partial(
                    store.query_range, h, metric, now - 6 * 3_600_000, now, labels=lab
                ),
                "24h": functools.partial(store.query_range, h, metric, now - day, now, labels=lab),
                "30d": functools.partial(
                    store.query_range, h, metric, now - 30 * day, now, labels=lab
                ),
            }
            for name, call in cases.items():
                t = time.perf_counter()
                res = await call()
                timings[name].append((time.perf_counter() - t) * 1000)
                assert res, name
        size = _du(work)
    finally:
        await store.close()
        shutil.rmtree(work, ignore_errors=True)
    out: dict[str, float] = {
        "hosts": hosts,
        "probe_hosts": probes,
        "days": days,
        "build_s": build_s,
        "db_bytes": size,
    }
    for name, xs in timings.items():
        out[f"{name}_p50_ms"] = statistics.median(xs)
        out[f"{name}_p95_ms"] = _pct(xs, 95)
    return out


def _fmt(d: dict[str, float]) -> str:
    return "\n".join(
        f"- {k}: {v:,.3f}" if isinstance(v, float) else f"- {k}: {v:,}" for k, v in d.items()
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("part", choices=["ingest", "storage", "query", "all"], default="all", nargs="?")
    ap.add_argument("--hosts", type=int, default=10_000, help="ingest: hosts")
    ap.add_argument("--rounds", type=int, default=3, help="ingest: measured rounds")
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--storage-hosts", type=int, default=200)
    ap.add_argument("--query-hosts", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=10, help="query: hosts with real data")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument(
        "--record", action="store_true", help="append the figures to docs/benchmarks.md"
    )
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    if args.part in ("ingest", "all"):
        results["ingest"] = asyncio.run(bench_ingest(args.hosts, args.rounds, 4, args.inflight))
        print("ingest\n" + _fmt(results["ingest"]), flush=True)
    if args.part in ("storage", "all"):
        results["storage"] = asyncio.run(bench_storage(args.storage_hosts))
        print("storage\n" + _fmt(results["storage"]), flush=True)
    if args.part in ("query", "all"):
        results["query"] = asyncio.run(
            bench_query(args.query_hosts, args.probes, args.days, args.reps)
        )
        print("query\n" + _fmt(results["query"]), flush=True)
    if args.record:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = [
            f"\n### store_engine run {stamp}\n",
            f"Machine: {os.cpu_count()} cores (shared with other jobs), "
            f"Python {platform.python_version()}; "
            f"command: `python bench/store_engine.py {' '.join(sys.argv[1:])}`\n",
        ]
        for part, figures in results.items():
            text.append(f"\n{part}:\n\n{_fmt(figures)}\n")
        with (ROOT / "docs" / "benchmarks.md").open("a") as fh:
            fh.write("".join(text))


if __name__ == "__main__":
    main()
