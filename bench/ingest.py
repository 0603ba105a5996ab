"""Ingest throughput: hostpulse vs Prometheus (remote-write receiver), the same samples, one run.

Both get identical data: simulated hosts (about 150 series each), one snapshot per host per round,
rounds 5 s apart, in requests of about ``--samples-per-request`` samples (Prometheus's remote-
write default is 500). A hostpulse request carries one host with its own agent key (a key may push
only for its host): about 3 consecutive snapshots of that host, as an agent sends when it batches;
a Prometheus request carries whole snapshots of about 3 hosts. Every request body is built and
compressed before the clock starts (hostpulse: protobuf + gzip; Prometheus: prompb + snappy), and
sent over ``--clients`` keep-alive connections by a minimal HTTP client, so the client's cost is
small; its CPU time is printed beside the servers'. Each connection owns a fixed set of hosts and
sends their rounds in order (Prometheus refuses out-of-order samples). Round 0 (series creation)
is sent before timing.

    python bench/ingest.py --hosts 1000 --rounds 30 --samples-per-request 500

``--baseline-src DIR`` also runs the server from another source tree (say, a checkout of an
older commit: ``git worktree add /tmp/old <commit>``, then ``--baseline-src /tmp/old/src``),
in the same run, for a before/after ratio. ``--skip-prometheus`` leaves Prometheus out.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RawClient,
    append_doc,
    bench_args,
    cpu_seconds,
    enroll_all,
    our_server,
    own_cpu_seconds,
    pb_field,
)
from _prom import WRITE_HEADERS, fast_write_request, prometheus, sample_prefixes, series_labels

from hostpulse import catalog
from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.push import make_hosts

OURS_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


Headers = Callable[[str], dict[str, str]]
"""The headers of one request for a host ("" for Prometheus's multi-host requests)."""


def keyed(keys: dict[str, str]) -> Headers:
    """hostpulse's headers: each request with its host's own agent key."""
    return lambda host_id: {**OURS_HEADERS, "Authorization": f"Bearer {keys[host_id]}"}


Req = tuple[bytes, int, str]  # body, samples, host
Rounds = list[list[list[Req]]]


@dataclass
class Load:
    """Pre-built requests: ``rounds[r][c]`` = list of (body, samples, host) for connection c.
    ``ours[0]`` and ``prom[0]`` (series creation, not timed) hold round 0; the rest of ``ours``
    holds rounds 1.. in requests of ``per_host`` snapshots, the rest of ``prom`` one round each."""

    ours: Rounds
    prom: Rounds
    samples_per_round: int


def build(hosts: int, rounds: int, per_request: int, clients: int, start_ms: int) -> Load:
    """Pre-encode every request. A HostBatch is its host+series part (encoded once per host)
    followed by encoded Snapshots: concatenated protobuf fields, the same message the agent
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

    def snapshot(h_id: str, r: int) -> bytes:
        vals = values[h_id][r]
        return pb_field(
            0x1A,
            Snapshot(
                timestamp_ms=int(ts[r]), series_index=range(len(vals)), values=vals, sequence=r
            ).SerializeToString(),
        )

    def ours_round(rs: range) -> list[list[Req]]:
        out: list[list[Req]] = [[] for _ in range(clients)]
        for i, h in enumerate(fleet):
            batch = pb_field(0x0A, head[h.host_id] + b"".join(snapshot(h.host_id, r) for r in rs))
            n = len(rs) * len(values[h.host_id][0])
            out[i % clients].append((gzip.compress(batch, compresslevel=1), n, h.host_id))
        return out

    ours: Rounds = [ours_round(range(1))]
    ours += [ours_round(range(r, min(r + group, rounds))) for r in range(1, rounds, group)]
    prom: Rounds = []
    for r in range(rounds):
        t = int(ts[r])
        p_round: list[list[Req]] = [[] for _ in range(clients)]
        for gi, g in enumerate(groups):
            labels = [lab for h in g for lab in prom_labels[h.host_id]]
            flat = [v for h in g for v in values[h.host_id][r]]
            n = len(flat)
            p_round[gi % clients].append((fast_write_request(labels, t, flat), n, ""))
        prom.append(p_round)
    total = sum(n for c in ours[0] for _, n, _ in c)
    return Load(ours, prom, total)


async def drive(url: str, path: str, rounds: Rounds, headers: Headers) -> tuple[int, int]:
    """Send every round; returns (samples accepted, failed requests)."""
    host, port = url.removeprefix("http://").split(":")
    n_clients = len(rounds[0])
    conns = [RawClient(host, int(port)) for _ in range(n_clients)]
    raw = [
        [
            [RawClient.build("POST", path, host, headers(h), b) for b, _, h in rnd[c]]
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


def measure(name: str, url: str, pid: int, path: str, rounds: Rounds, headers: Headers) -> Result:
    asyncio.run(drive(url, path, rounds[:1], headers))  # series creation, not timed
    cpu0, own0, t0 = cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    ok, failed = asyncio.run(drive(url, path, rounds[1:], headers))
    elapsed = time.perf_counter() - t0
    return Result(name, ok, failed, elapsed, cpu_seconds(pid) - cpu0, own_cpu_seconds() - own0)


def median_result(runs: list[Result]) -> Result:
    """The run with the median rate (of an odd count; the lower middle otherwise)."""
    return sorted(runs, key=lambda r: r.rate)[(len(runs) - 1) // 2]


def main() -> None:
    ap = bench_args(__doc__)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=30, help="snapshots per host (first is warm-up)")
    ap.add_argument("--samples-per-request", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each server, alternating")
    ap.add_argument("--baseline-src", type=Path, help="also run the server from this src tree")
    ap.add_argument("--skip-prometheus", action="store_true")
    args = ap.parse_args()

    start_ms = (int(time.time() * 1000) - args.rounds * 5000 - 60_000) // 1000 * 1000
    t = time.perf_counter()
    load = build(args.hosts, args.rounds, args.samples_per_request, args.clients, start_ms)
    ours_per_req = sum(n for c in load.ours[1] for _, n, _ in c) // args.hosts
    n_prom = sum(len(c) for c in load.prom[0])
    prom_per_req = load.samples_per_round // n_prom
    print(
        f"built {args.rounds} rounds x {load.samples_per_round:,} samples (hostpulse: one host "
        f"per request, ~{ours_per_req} samples each; Prometheus: {n_prom} requests per round, "
        f"~{prom_per_req} samples each) in {time.perf_counter() - t:.1f} s"
    )
    hosts = sorted({h for c in load.ours[0] for _, _, h in c})
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
                    # every host enrolls, as its agent would (a baseline from before agent
                    # keys takes no key)
                    hdr = keyed(enroll_all(url, hosts)) if src is None else lambda _: OURS_HEADERS
                    r = measure(name, url, proc.pid, "/api/v1/ingest", load.ours, hdr)
                runs.setdefault(name, []).append(r)
                print(r.line(), flush=True)
            if not args.skip_prometheus:
                tsdb = root / f"tsdb-{rep}"
                tsdb.mkdir()
                with prometheus(tsdb, root / "prom.log") as (url, proc):
                    r = measure(
                        "prometheus",
                        url,
                        proc.pid,
                        "/api/v1/write",
                        load.prom,
                        lambda _: WRITE_HEADERS,
                    )
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
                f"{args.rounds - 1} timed rounds; hostpulse: one host per request with its agent "
                f"key, ~{ours_per_req} samples each; Prometheus: ~{prom_per_req} samples per "
                f"request; {args.clients} connections; {args.repeat} runs of each server "
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
