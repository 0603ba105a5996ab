"""Ingest throughput: hostpulse vs Prometheus (remote-write receiver), the same samples, one run.

Both get identical data: simulated hosts (about 150 series each), one snapshot per host per
round, rounds 5 s apart. hostpulse gets one host's snapshot per request with that host's own
agent key (a key may push only for its host, as agents do); Prometheus gets requests of whole
host-snapshots of about ``--samples-per-request`` samples (its remote-write default is 500).
Every request body is built and compressed before the clock starts (hostpulse: protobuf + gzip;
Prometheus: prompb + snappy), and sent over ``--clients`` keep-alive connections by a minimal HTTP
client, so the client's cost is small; its CPU time is printed beside the servers'. Each connection
owns a fixed set of hosts and sends their rounds in order (Prometheus refuses out-of-order
samples). Round 0 (series creation) is sent before timing.

    python bench/ingest.py --hosts 1000 --rounds 30 --samples-per-request 500
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RawClient,
    append_doc,
    cpu_seconds,
    enroll_all,
    our_server,
    own_cpu_seconds,
)
from _prom import WRITE_HEADERS, fast_write_request, prometheus, sample_prefixes, series_labels

from hostpulse import catalog
from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.push import make_hosts

OURS_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


@dataclass
class Load:
    """Pre-built request bodies: ``rounds[r][c]`` = list of (body, samples) for connection c."""

    ours: list[list[list[tuple[bytes, int, str]]]]
    """(body, samples, host_id): one host per request."""
    prom: list[list[list[tuple[bytes, int, str]]]]
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
    ours: list[list[list[tuple[bytes, int, str]]]] = []
    prom: list[list[list[tuple[bytes, int, str]]]] = []
    for r in range(rounds):
        t = int(ts[r])
        o_round: list[list[tuple[bytes, int, str]]] = [[] for _ in range(clients)]
        p_round: list[list[tuple[bytes, int, str]]] = [[] for _ in range(clients)]
        for gi, g in enumerate(groups):
            n = 0
            for h in g:
                vals = values[h.host_id][r]
                snap = Snapshot(
                    timestamp_ms=t, series_index=range(len(vals)), values=vals, sequence=r
                ).SerializeToString()
                part = _len_field(0x0A, head[h.host_id] + _len_field(0x1A, snap))
                body = gzip.compress(part, compresslevel=1)
                o_round[gi % clients].append((body, len(vals), h.host_id))
                n += len(vals)
            labels = [lab for h in g for lab in prom_labels[h.host_id]]
            flat = [v for h in g for v in values[h.host_id][r]]
            p_round[gi % clients].append((fast_write_request(labels, t, flat), n, ""))
        ours.append(o_round)
        prom.append(p_round)
    total = sum(n for c in ours[0] for _, n, _ in c)
    return Load(ours, prom, total)


async def drive(
    url: str,
    path: str,
    headers: dict[str, str],
    rounds: list[list[list[tuple[bytes, int, str]]]],
    keys: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Send every round (each request with its host's key when ``keys`` is given); returns
    (samples accepted, failed requests)."""

    def head(host_id: str) -> dict[str, str]:
        if keys is None:
            return headers
        return {**headers, "Authorization": f"Bearer {keys[host_id]}"}

    host, port = url.removeprefix("http://").split(":")
    n_clients = len(rounds[0])
    conns = [RawClient(host, int(port)) for _ in range(n_clients)]
    raw = [
        [
            [RawClient.build("POST", path, host, head(h), b) for b, _, h in rnd[c]]
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
            f"per CPU-second; client CPU {self.client_cpu:.1f} s)"
        )


def measure(
    name: str,
    url: str,
    pid: int,
    path: str,
    headers: dict[str, str],
    rounds: list[list[list[tuple[bytes, int, str]]]],
    keys: dict[str, str] | None = None,
) -> Result:
    asyncio.run(drive(url, path, headers, rounds[:1], keys))  # series creation, not timed
    cpu0, own0, t0 = cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    ok, failed = asyncio.run(drive(url, path, headers, rounds[1:], keys))
    elapsed = time.perf_counter() - t0
    return Result(name, ok, failed, elapsed, cpu_seconds(pid) - cpu0, own_cpu_seconds() - own0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=30, help="snapshots per host (first is warm-up)")
    ap.add_argument("--samples-per-request", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections")
    ap.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    args = ap.parse_args()

    start_ms = (int(time.time() * 1000) - args.rounds * 5000 - 60_000) // 1000 * 1000
    t = time.perf_counter()
    load = build(args.hosts, args.rounds, args.samples_per_request, args.clients, start_ms)
    n_req = sum(len(c) for c in load.ours[0])
    n_prom = sum(len(c) for c in load.prom[0])
    print(
        f"built {args.rounds} rounds x {load.samples_per_round:,} samples "
        f"(hostpulse: {n_req} requests per round, one host each; Prometheus: {n_prom} of "
        f"~{load.samples_per_round // n_prom} samples) "
        f"in {time.perf_counter() - t:.1f} s"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        with our_server(root / "ours", root / "ours.log") as (url, proc):
            hosts = sorted({h for c in load.ours[0] for _, _, h in c})
            keys = enroll_all(url, hosts)  # every host enrolls, as its agent would
            results.append(
                measure("hostpulse", url, proc.pid, "/api/v1/ingest", OURS_HEADERS, load.ours, keys)
            )
        print(results[-1].line())
        (root / "tsdb").mkdir()
        with prometheus(root / "tsdb", root / "prom.log") as (url, proc):
            results.append(
                measure("prometheus", url, proc.pid, "/api/v1/write", WRITE_HEADERS, load.prom)
            )
        print(results[-1].line())
    ours, prom = results
    ratio = ours.rate / prom.rate if prom.rate else math.nan
    print(f"ratio hostpulse / prometheus: {ratio:.2f}")
    if not args.no_doc:
        body = "\n".join(
            [
                f"{args.hosts} simulated hosts x ~{load.samples_per_round // args.hosts} series, "
                f"{args.rounds - 1} timed rounds, one host (~{load.samples_per_round // n_req} "
                f"samples) per hostpulse request with its agent key, "
                f"~{load.samples_per_round // n_prom} samples per Prometheus request, "
                f"{args.clients} connections.",
                "",
                "```",
                ours.line(),
                prom.line(),
                f"ratio hostpulse / prometheus: {ratio:.2f}",
                "```",
            ]
        )
        append_doc("Ingest", "python " + " ".join(sys.argv), body)


if __name__ == "__main__":
    main()
