"""Bytes per raw sample on disk after 24 h of simulated data: hostpulse's store vs Prometheus and
VictoriaMetrics.

The same samples (simulated hosts, ~150 series each, every 5 s for ``--hours``) go to both:
hostpulse's store directly through its ``Store`` interface (the size does not depend on the
HTTP path), Prometheus through its remote-write receiver, oldest first. hostpulse: the store's
maintenance runs as the server's background job would (compaction, rollups), then the store is
closed and its whole data directory measured (database + write-ahead log, rollups included).
Prometheus: it cuts and compacts its head into blocks as data arrives; we count only persisted
blocks, bytes of the block directories divided by the samples their ``meta.json`` reports (the
head and its WAL, the newest ~3 h, are not counted). VictoriaMetrics: the same remote-write
requests; after ``/internal/force_flush`` its whole data directory (data and index) divided by
every sample sent.

    python bench/storage_size.py --hosts 10 --hours 24
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_args, dir_size, report, write_json
from _prom import SimFeed, block_stats, prometheus
from _vm import flushed_size, victoria_metrics

from hostpulse.protocol import IngestRequest
from hostpulse.sim.push import make_hosts
from hostpulse.store import open_store

CHUNK = 60  # snapshots per host per request (5 minutes)


async def run(hosts: int, hours: float, root: Path, refs: dict[str, str]) -> dict[str, float]:
    fleet = make_hosts(hosts, seed=7)
    end_ms = (int(time.time() * 1000) // 300_000) * 300_000 - 600_000
    start_ms = end_ms - int(hours * 3_600_000)
    store = open_store(root / "ours")
    await store.start()
    feed = SimFeed(fleet, refs)
    total = 0
    t_ours = t_prom = 0.0
    for chunks, t in enumerate(range(start_ms, end_ms, CHUNK * 5000), start=1):
        ts = np.arange(t, min(end_ms, t + CHUNK * 5000), 5000, dtype=np.int64)
        ts_list = ts.tolist()
        sends = []
        for i, h in enumerate(fleet):
            vals = h.block(ts)
            batch = feed.batch(h, ts_list, vals)
            t0 = time.perf_counter()
            res = await store.ingest(IngestRequest(batches=[batch]), int(time.time() * 1000))
            t_ours += time.perf_counter() - t0
            total += res.accepted
            sends.append(feed.send(i, h, ts_list, vals))
        t0 = time.perf_counter()
        await feed.settle(sends)
        t_prom += time.perf_counter() - t0
        if chunks % 12 == 0:  # every simulated hour, as the server's maintenance job would
            await store.maintain(int(time.time() * 1000))
    await store.maintain(int(time.time() * 1000))
    stats = await store.stats()
    await store.close()
    await feed.close()
    ours_bytes = dir_size(root / "ours")
    return {
        "samples": total,
        "ours_bytes": ours_bytes,
        "ours_stats_bytes": stats.bytes_on_disk,
        "ours_raw": stats.raw_samples,
        "minute": stats.minute_points,
        "hour": stats.hour_points,
        "prom_failed": feed.failed["prometheus"],
        "vm_failed": feed.failed["victoriametrics"],
        "t_ours": t_ours,
        "t_prom": t_prom,
    }


def main() -> None:
    ap = bench_args(__doc__)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--hours", type=float, default=24.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-size-") as tmp:
        root = Path(tmp)
        (root / "tsdb").mkdir()
        (root / "vm").mkdir()
        with (
            prometheus(root / "tsdb", root / "prom.log") as (url, _proc),
            victoria_metrics(root / "vm", root / "vm.log") as (vm_url, _vm),
        ):
            refs = {"prometheus": url, "victoriametrics": vm_url}
            r = asyncio.run(run(args.hosts, args.hours, root, refs))
            vm_bytes = flushed_size(vm_url, root / "vm")
            # let Prometheus finish cutting blocks (it compacts once the head spans > 3 h)
            deadline = time.monotonic() + 180
            blocks, prom_samples, prom_bytes = block_stats(root / "tsdb")
            while time.monotonic() < deadline:
                time.sleep(5)
                now = block_stats(root / "tsdb")
                if now == (blocks, prom_samples, prom_bytes) and blocks:
                    break
                blocks, prom_samples, prom_bytes = now
    ours = r["ours_bytes"] / r["ours_raw"]
    prom = prom_bytes / prom_samples if prom_samples else float("nan")
    vm = vm_bytes / r["samples"]
    lines = [
        f"samples: {int(r['samples']):,} ({args.hosts} hosts, {args.hours} h at 5 s)",
        f"hostpulse  {ours:.2f} bytes/raw sample  ({int(r['ours_bytes']):,} bytes on disk for "
        f"{int(r['ours_raw']):,} raw samples, incl. {int(r['minute']):,} 1-minute and "
        f"{int(r['hour']):,} 1-hour rollup points; store ingest {r['t_ours']:.0f} s)",
        f"prometheus {prom:.2f} bytes/sample      ({prom_bytes:,} bytes in {blocks} blocks for "
        f"{prom_samples:,} samples; head not counted; {int(r['prom_failed'])} refused requests)",
        f"victoriametrics {vm:.2f} bytes/sample ({vm_bytes:,} bytes in its data directory after "
        f"a forced flush for {int(r['samples']):,} samples; {int(r['vm_failed'])} refused "
        "requests)",
        f"ratio hostpulse / prometheus: {ours / prom:.2f}",
        f"ratio hostpulse / victoriametrics: {ours / vm:.2f}",
    ]
    report("Storage size", lines, args.no_doc)
    if args.json is not None:
        write_json(
            args.json,
            {
                "hostpulse": {"bytes_per_sample": ours},
                "prometheus": {"bytes_per_sample": prom},
                "victoriametrics": {"bytes_per_sample": vm},
            },
        )


if __name__ == "__main__":
    main()
