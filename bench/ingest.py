"""Ingest throughput: hostpulse vs Prometheus (remote-write receiver), the same samples, one run.

Both get identical data: simulated hosts (about 150 series each), one snapshot per host per
round, rounds 5 s apart; requests of whole host-snapshots of about ``--samples-per-request``
samples (Prometheus's remote-write default is 500). Every request body is built and compressed
before the clock starts (hostpulse: protobuf + gzip; Prometheus: prompb + snappy), and sent over
``--clients`` keep-alive connections by a minimal HTTP client, so the client's cost is small;
its CPU time is printed beside the servers'. Each connection owns a fixed set of hosts and sends
their rounds in order (Prometheus refuses out-of-order samples). Round 0 (series creation) is
sent before timing.

    python bench/ingest.py --hosts 1000 --rounds 30 --samples-per-request 500

``--baseline-src DIR`` also runs the server from another source tree (say, a checkout of an
older commit: ``git worktree add /tmp/old <commit>``, then ``--baseline-src /tmp/old/src``),
in the same run, for a before/after ratio. ``--skip-prometheus`` leaves Prometheus out.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RawClient, append_doc, cpu_seconds, our_server, own_cpu_seconds
from _prom import WRITE_HEADERS, fast_write_request, prometheus, sample_prefixes, series_labels

from hostpulse import catalog
from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.push import make_hosts

OURS_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


def ingest_headers(host_ids: list[str]) -> dict[str, str]:
    """Headers of one ingest request carrying ``host_ids`` (the one place to add per-host
    credentials)."""
    return OURS_HEADERS


Req = tuple[bytes, int, dict[str, str]]  # body, samples, headers
Rounds = list[list[list[Req]]]


@dataclass
class Load:
    """Pre-built requests: ``rounds[r][c]`` = list of (body, samples, headers) for
    connection c."""

    ours: Rounds
    prom: Rounds
    samples_per_round: int


def _len_field(tag: int, payload: bytes) -> bytes:
    n, out = len(payload), bytearray([tag])
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def build(hosts: int, rounds: int, per_request: int, clients: int, start_ms: int) -> Load:
    """Pre-encode every request. A HostBatch is its host+series part (encoded once per host)
    followed by one encoded Snapshot: concatenated protobuf fields, the same message the agent
    sends."""
    fleet = make_hosts(hosts)
    avg = sum(len(h.series) for h in fleet) / len(fleet)
    group = max(1, round(per_request / avg))
    groups = [fleet[i : i + group] for i in range(0, len(fleet), group)]
    ts = np.arange(rounds, dtype=np.int64) * 5000 + start_ms
    head: dict[str, bytes] = {}
    values: dict[str, list[list[float]]] = {}
    prom_labels: dict[str, list[bytes]] = {}
    for h in fleet:
        head[h.host_id] = HostBatch(
            host=host_message(h, 5.0), series=series_defs(h)
        ).SerializeToString()
        values[h.host_id] = h.block(ts).tolist()
        prom_labels[h.host_id] = sample_prefixes(
            [
                series_labels(catalog.get(k).prom_name, {**dict(lab), "instance": h.host_id})
                for k, lab in h.series
            ],
            start_ms,
        )
    ours: Rounds = []
    prom: Rounds = []
    for r in range(rounds):
        t = int(ts[r])
        o_round: list[list[Req]] = [[] for _ in range(clients)]
        p_round: list[list[Req]] = [[] for _ in range(clients)]
        for gi, g in enumerate(groups):
            parts, n = [], 0
            for h in g:
                vals = values[h.host_id][r]
                snap = Snapshot(
                    timestamp_ms=t, series_index=range(len(vals)), values=vals, sequence=r
                ).SerializeToString()
                parts.append(_len_field(0x0A, head[h.host_id] + _len_field(0x1A, snap)))
                n += len(vals)
            body = gzip.compress(b"".join(parts), compresslevel=1)
            o_round[gi % clients].append((body, n, ingest_headers([h.host_id for h in g])))
            labels = [lab for h in g for lab in prom_labels[h.host_id]]
            flat = [v for h in g for v in values[h.host_id][r]]
            p_round[gi % clients].append((fast_write_request(labels, t, flat), n, WRITE_HEADERS))
        ours.append(o_round)
        prom.append(p_round)
    total = sum(n for c in ours[0] for _, n, _ in c)
    return Load(ours, prom, total)


async def drive(url: str, path: str, rounds: Rounds) -> tuple[int, int]:
    """Send every round; returns (samples accepted, failed requests)."""
    host, port = url.removeprefix("http://").split(":")
    n_clients = len(rounds[0])
    conns = [RawClient(host, int(port)) for _ in range(n_clients)]
    raw = [
        [
            [RawClient.build("POST", path, host, hd, b) for b, _, hd in rnd[c]]
            for c in range(n_clients)
        ]
        for rnd in rounds
    ]
    counts = [[[n for _, n, _ in rnd[c]] for c in range(n_clients)] for rnd in rounds]
    ok = failed = 0

    async def worker(c: int) -> None:
        nonlocal ok, failed
        for r in range(len(rounds)):
            for req, n in zip(raw[r][c], counts[r][c], strict=True):
                status, body = await conns[c].send(req)
                if status < 300:
                    ok += n
                else:
                    failed += 1
                    if failed <= 3:
                        print(f"  refused: {status} {body[:200]!r}", file=sys.stderr)

    await asyncio.gather(*(worker(c) for c in range(n_clients)))
    for conn in conns:
        await conn.close()
    return ok, failed


@dataclass
class Result:
    name: str
    samples: int
    failed: int
    seconds: float
    server_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.samples / self.seconds

    def line(self) -> str:
        return (
            f"{self.name:<11} {self.rate:>10,.0f} samples/s  ({self.samples:,} samples in "
            f"{self.seconds:.1f} s, {self.failed} failed requests; server CPU "
            f"{self.server_cpu:.1f} s = {self.samples / max(self.server_cpu, 1e-9):,.0f} samples "
            f"per CPU-second; client CPU {self.client_cpu:.1f} s = "
            f"{100 * self.client_cpu / self.seconds:.0f} % of a core)"
        )


def measure(name: str, url: str, pid: int, path: str, rounds: Rounds) -> Result:
    asyncio.run(drive(url, path, rounds[:1]))  # series creation, not timed
    cpu0, own0, t0 = cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    ok, failed = asyncio.run(drive(url, path, rounds[1:]))
    elapsed = time.perf_counter() - t0
    return Result(name, ok, failed, elapsed, cpu_seconds(pid) - cpu0, own_cpu_seconds() - own0)


def median_result(runs: list[Result]) -> Result:
    """The run with the median rate (of an odd count; the lower middle otherwise)."""
    return sorted(runs, key=lambda r: r.rate)[(len(runs) - 1) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=30, help="snapshots per host (first is warm-up)")
    ap.add_argument("--samples-per-request", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each server, alternating")
    ap.add_argument("--baseline-src", type=Path, help="also run the server from this src tree")
    ap.add_argument("--skip-prometheus", action="store_true")
    ap.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    args = ap.parse_args()

    start_ms = (int(time.time() * 1000) - args.rounds * 5000 - 60_000) // 1000 * 1000
    t = time.perf_counter()
    load = build(args.hosts, args.rounds, args.samples_per_request, args.clients, start_ms)
    n_req = sum(len(c) for c in load.ours[0])
    print(
        f"built {args.rounds} rounds x {load.samples_per_round:,} samples "
        f"({n_req} requests per round, ~{load.samples_per_round // n_req} samples each) "
        f"in {time.perf_counter() - t:.1f} s"
    )
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        for rep in range(args.repeat):
            systems: list[tuple[str, Path | None]] = [("hostpulse", None)]
            if args.baseline_src is not None:
                systems.insert(0, ("baseline", args.baseline_src))
            for name, src in systems:
                data = root / f"{name}-{rep}"
                with our_server(data, root / f"{name}.log", src=src) as (url, proc):
                    r = measure(name, url, proc.pid, "/api/v1/ingest", load.ours)
                runs.setdefault(name, []).append(r)
                print(r.line(), flush=True)
            if not args.skip_prometheus:
                tsdb = root / f"tsdb-{rep}"
                tsdb.mkdir()
                with prometheus(tsdb, root / "prom.log") as (url, proc):
                    r = measure("prometheus", url, proc.pid, "/api/v1/write", load.prom)
                runs.setdefault("prometheus", []).append(r)
                print(r.line(), flush=True)
    lines = [median_result(rs).line() for rs in runs.values()]
    ours = [r.rate for r in runs["hostpulse"]]
    for ref in ("baseline", "prometheus"):
        if ref in runs:
            ratios = sorted(o / b.rate for o, b in zip(ours, runs[ref], strict=True))
            lines.append(
                f"ratio hostpulse / {ref}: median {ratios[(len(ratios) - 1) // 2]:.2f} "
                f"(per run: {', '.join(f'{x:.2f}' for x in ratios)})"
            )
    print("\n".join(lines))
    if not args.no_doc:
        body = "\n".join(
            [
                f"{args.hosts} simulated hosts x ~{load.samples_per_round // args.hosts} series, "
                f"{args.rounds - 1} timed rounds, ~{load.samples_per_round // n_req} samples per "
                f"request, {args.clients} connections; {args.repeat} runs of each server "
                "(alternating), the median run shown; client CPU = this script's own CPU time "
                "while it sends.",
                "",
                "```",
                *lines,
                "```",
            ]
        )
        append_doc("Ingest", "python " + " ".join(sys.argv), body)


if __name__ == "__main__":
    main()
