"""CPU-seconds per sample of the TSDB backend's write path (``hostpulse.store.tsdb``), in
this process only (``time.process_time``; VictoriaMetrics' own CPU is printed beside it).

Two figures, over the same simulated requests (one host per request, ``--snapshots``
consecutive snapshots of about 150 series, as an agent sends them):

- encode: the remote-write bodies (``write_chunks``: label bytes cached per series table,
  then snappy) alone;
- ingest: ``TsdbStore.ingest`` whole (registry lookup, encoding, process lists to SQLite,
  the HTTP POSTs, grouped when requests are concurrent, to a real VictoriaMetrics) with
  ``--concurrency`` requests in flight.

Every host's first request (registration) is sent before the clock starts.

    python bench/tsdb_write.py --hosts 200 --rounds 20 --snapshots 3 --compare-embedded

``--compare-embedded`` also runs the embedded store's ``ingest`` on the same requests (its
CPU per sample, same process, same run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import cpu_seconds
from _vm import victoria_metrics

from hostpulse.protocol import IngestRequest
from hostpulse.sim.build import host_batch
from hostpulse.sim.push import make_hosts
from hostpulse.store import open_store, sqlite_url
from hostpulse.store.db import Database
from hostpulse.store.tsdb import open_tsdb_store
from hostpulse.store.tsdb.remote_write import compress, write_chunks


def requests(hosts: int, rounds: int, snapshots: int) -> list[list[IngestRequest]]:
    """Per round, one request per host."""
    sims = make_hosts(hosts, seed=11)
    now = int(time.time() * 1000)
    step = 5000
    start = now - now % step - (rounds + 1) * snapshots * step
    out = []
    for r in range(rounds + 1):
        ts = np.arange(start + r * snapshots * step, start + (r + 1) * snapshots * step, step)
        out.append([IngestRequest(batches=[host_batch(h, ts, 5.0)]) for h in sims])
    return out


async def run(args: argparse.Namespace, url: str, vm_pid: int, work: Path) -> None:
    rounds = requests(args.hosts, args.rounds, args.snapshots)
    samples = sum(
        len(s.values) for rnd in rounds[1:] for req in rnd for s in req.batches[0].snapshots
    )
    store = open_tsdb_store(url, Database(sqlite_url(work / "r.db")), owns_database=True)
    await store.start()
    try:
        for req in rounds[0]:  # first contact: hosts and series registered
            await store.ingest(req, 0)
        tables = [
            [(req.batches[0], await store._table(req.batches[0], 0)) for req in rnd]
            for rnd in rounds[1:]
        ]
        t0 = time.process_time()
        for rnd in tables:
            for part in rnd:
                for _, raw in write_chunks([part], store.max_samples_per_write):
                    compress([raw])
        encode = time.process_time() - t0

        sem = asyncio.Semaphore(args.concurrency)

        async def one(req: IngestRequest) -> None:
            async with sem:
                await store.ingest(req, 0)

        vm0 = cpu_seconds(vm_pid)
        t0, w0 = time.process_time(), time.perf_counter()
        for rnd in rounds[1:]:
            await asyncio.gather(*(one(req) for req in rnd))
        ingest = time.process_time() - t0
        wall = time.perf_counter() - w0
        vm = cpu_seconds(vm_pid) - vm0
    finally:
        await store.close()
    embedded = await embedded_cpu(rounds, work) if args.compare_embedded else None
    load = os.getloadavg()
    print(f"samples timed: {samples} ({args.hosts} hosts x {args.rounds} rounds x ~150 series)")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"encode only:  {encode / samples * 1e6:.2f} us CPU per sample")
    print(
        f"ingest whole: {ingest / samples * 1e6:.2f} us CPU per sample in hostpulse "
        f"({samples / wall:,.0f} samples/s wall); VictoriaMetrics "
        f"{vm / samples * 1e6:.2f} us CPU per sample"
    )
    if embedded is not None:
        print(
            f"embedded store ingest of the same requests: {embedded / samples * 1e6:.2f} us "
            "CPU per sample"
        )


async def embedded_cpu(rounds: list[list[IngestRequest]], work: Path) -> float:
    """CPU-seconds of the embedded store's ``ingest`` of the same timed requests, one at a
    time after the first contact round (its write-ahead log is fsynced per group)."""
    store = open_store(work / "embedded")
    await store.start()
    try:
        for req in rounds[0]:
            await store.ingest(req, 0)
        t0 = time.process_time()
        for rnd in rounds[1:]:
            await asyncio.gather(*(store.ingest(req, 0) for req in rnd))
        return time.process_time() - t0
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--compare-embedded",
        action="store_true",
        help="also the embedded store's ingest CPU of the same requests",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tsdb-bench-") as tmp:
        work = Path(tmp)
        with victoria_metrics(work / "vm", work / "vm.log") as (url, proc):
            asyncio.run(run(args, url, proc.pid, work))


if __name__ == "__main__":
    main()
