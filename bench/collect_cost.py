"""CPU cost of one collection, per collector and in total, against node_exporter's scrape.

Usage: python bench/collect_cost.py [--runs 200] [--scrapes 200] [--no-reference]

For each collector, on its Linux fast path and on its portable psutil path: the median CPU
time (time.process_time: user + system of this process) of one ``collect()`` call over
``--runs`` calls, after two warm-up calls (the first reading of a collector also reads its
static data); then the median of a whole collection (all collectors back to back).

The reference is node_exporter (/usr/bin/prometheus-node-exporter, default collectors) started
on a free loopback port: its own CPU time (utime + stime from /proc/<pid>/stat) per scrape of
/metrics, averaged over ``--scrapes`` scrapes, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from hostpulse.agent.collectors import (
    ConnectionsCollector,
    CpuCollector,
    DiskIOCollector,
    DiskUsageCollector,
    MemoryCollector,
    NetworkCollector,
    ProcessCollector,
    SystemCollector,
    build_collectors,
)
from hostpulse.agent.collectors.base import Collector

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def portable_collectors(top_n: int) -> list[Collector]:
    """The psutil paths of the same collectors (what macOS and Windows run)."""
    return [
        CpuCollector(use_procfs=False),
        MemoryCollector(use_procfs=False),
        DiskUsageCollector(use_procfs=False),
        DiskIOCollector(use_procfs=False),
        NetworkCollector(use_procfs=False),
        ConnectionsCollector(use_netlink=False),
        ProcessCollector(top_n=top_n, use_procfs=False),
        SystemCollector(use_procfs=False),
    ]


def collector_costs(collectors: list[Collector], runs: int) -> dict[str, float]:
    """Median CPU seconds of one collect() per collector."""
    costs: dict[str, list[float]] = {}
    for c in collectors:
        c.collect(time.monotonic())
        c.collect(time.monotonic())
    for _ in range(runs):
        for c in collectors:
            t0 = time.process_time()
            c.collect(time.monotonic())
            costs.setdefault(c.name, []).append(time.process_time() - t0)
    return {name: statistics.median(v) for name, v in costs.items()}


def total_cost(collectors: list[Collector], runs: int) -> float:
    """Median CPU seconds of one whole collection (all collectors back to back)."""
    for c in collectors:
        c.collect(time.monotonic())
    samples: list[float] = []
    for _ in range(runs):
        t0 = time.process_time()
        for c in collectors:
            c.collect(time.monotonic())
        samples.append(time.process_time() - t0)
    return statistics.median(samples)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_exporter_cost(scrapes: int) -> float | None:
    if not os.access(NODE_EXPORTER, os.X_OK):
        return None
    port = _free_port()
    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for _ in range(3):  # warm up
            urllib.request.urlopen(url, timeout=5).read()
        before = _cpu_seconds(proc.pid)
        for _ in range(scrapes):
            urllib.request.urlopen(url, timeout=5).read()
        return (_cpu_seconds(proc.pid) - before) / scrapes
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()
    ref: float | None = None

    fast = collector_costs(build_collectors(top_n=args.top_n), args.runs)
    portable = collector_costs(portable_collectors(args.top_n), args.runs)
    total = total_cost(build_collectors(top_n=args.top_n), args.runs)
    total_portable = total_cost(portable_collectors(args.top_n), args.runs)
    processes = sum(1 for e in os.listdir("/proc") if e.isdigit())
    print(
        f"median CPU ms per collection, {args.runs} runs, top_n={args.top_n}, "
        f"{processes} processes, {os.cpu_count()} CPUs"
    )
    print(f"  {'collector':<12} {'linux fast':>10} {'psutil':>10}")
    for name, cost in fast.items():  # a Linux-only collector (sensors) has no psutil path
        other = f"{portable[name] * 1000:10.3f}" if name in portable else f"{'—':>10}"
        print(f"  {name:<12} {cost * 1000:10.3f} {other}")
    print(f"  {'total':<12} {total * 1000:10.3f} {total_portable * 1000:10.3f}")
    if not args.no_reference:
        ref = node_exporter_cost(args.scrapes)
        if ref is None:
            print(f"reference: {NODE_EXPORTER} not installed")
        else:
            print(f"node_exporter CPU ms per scrape ({args.scrapes} scrapes): {ref * 1000:.3f}")
            print(
                f"ratio total / node_exporter: linux fast {total / ref:.2f}, "
                f"psutil {total_portable / ref:.2f}"
            )
    if args.json is not None:
        figures = {
            "whole_collection_ms": total * 1000,
            "psutil_collection_ms": total_portable * 1000,
        }
        if ref is not None:
            figures["node_exporter_scrape_ms"] = ref * 1000
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
