"""Ingest throughput: hostpulse vs Prometheus (remote-write receiver), the same samples, one run.

Both get identical data: simulated hosts (about 150 series each), one snapshot per host per round,
rounds 5 s apart, in requests of about ``--samples-per-request`` samples (Prometheus's remote-
write default is 500). A hostpulse request carries one host with its own agent key (a key may push
only for its host): about 3 consecutive snapshots of that host, as an agent sends when it batches;
a Prometheus request carries whole snapshots of about 3 hosts. Every request body is built and
compressed before the clock starts (hostpulse: protobuf + gzip; Prometheus: prompb + snappy), and
sent over ``--clients`` keep-alive connections by a minimal HTTP client, so the client's cost is
small; its CPU time is printed beside the servers'. Each connection owns a fixed set of hosts and
sends their rounds in order (Prometheus refuses out-of-order samples).

Round 0 is every host's first contact (hosts and series created). Two figures per system: the
timed rounds 1.. alone ("samples/s", as in the earlier sections of docs/benchmarks.md), and
"with first contact": every round's samples over the time of every round, round 0 included.

The references get the same samples in the same run: Prometheus (remote-write receiver) and
VictoriaMetrics (its /api/v1/write takes the same bodies).

    python bench/ingest.py --hosts 1000 --rounds 30 --samples-per-request 500

``--baseline-src DIR`` also runs the server from another source tree (say, an older commit:
``git archive <commit> src | tar -x -C /tmp/old``, then ``--baseline-src /tmp/old/src``), in the
same run, for a before/after ratio. A baseline from before agent keys (no
``/api/v1/auth/login``) is sent the same requests without a key. ``--skip-prometheus`` and
``--skip-vm`` leave a reference out; ``--json OUT`` writes the figures for ``bench/all.py``.
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
    has_agent_keys,
    our_server,
    own_cpu_seconds,
    pb_field,
    write_json,
)
from _prom import WRITE_HEADERS, fast_write_request, prometheus, sample_prefixes, series_labels
from _vm import WRITE_PATH as VM_WRITE_PATH
from _vm import victoria_metrics

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
                try:
                    status, body = await conns[c].send(req)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    # the server closes the connection after an error answer: a new one
                    status, body = 599, repr(exc).encode()
                    await conns[c].close()
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
    # round 0, every host's first contact
    first_samples: int
    first_failed: int
    first_seconds: float
    first_cpu: float

    @property
    def rate(self) -> float:
        return self.samples / self.seconds

    @property
    def per_cpu(self) -> float:
        return self.samples / max(self.server_cpu, 1e-9)

    @property
    def rate_all(self) -> float:
        """Samples per second over every round, first contact included."""
        return (self.samples + self.first_samples) / (self.seconds + self.first_seconds)

    @property
    def per_cpu_all(self) -> float:
        return (self.samples + self.first_samples) / max(self.server_cpu + self.first_cpu, 1e-9)

    def line(self) -> str:
        return (
            f"{self.name:<15} {self.rate:>10,.0f} samples/s  ({self.samples:,} samples in "
            f"{self.seconds:.1f} s, {self.failed} failed requests; server CPU "
            f"{self.server_cpu:.1f} s = {self.per_cpu:,.0f} samples "
            f"per CPU-second; client CPU {self.client_cpu:.1f} s = "
            f"{100 * self.client_cpu / self.seconds:.0f} % of a core)"
        )

    def line_all(self) -> str:
        return (
            f"{self.name:<15} {self.rate_all:>10,.0f} samples/s with first contact "
            f"({self.first_samples:,} samples in {self.first_seconds:.1f} s for round 0, "
            f"{self.first_failed} failed requests; {self.per_cpu_all:,.0f} samples per "
            "CPU-second)"
        )


def measure(name: str, url: str, pid: int, path: str, rounds: Rounds, headers: Headers) -> Result:
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    first_ok, first_failed = asyncio.run(drive(url, path, rounds[:1], headers))
    cpu1, own1, t1 = cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    ok, failed = asyncio.run(drive(url, path, rounds[1:], headers))
    t2 = time.perf_counter()
    return Result(
        name,
        ok,
        failed,
        t2 - t1,
        cpu_seconds(pid) - cpu1,
        own_cpu_seconds() - own1,
        first_ok,
        first_failed,
        t1 - t0,
        cpu1 - cpu0,
    )


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
    ap.add_argument("--skip-vm", action="store_true", help="leave VictoriaMetrics out")
    args = ap.parse_args()

    def fresh_load() -> Load:
        """The requests, stamped from now: every server run gets samples as recent as the
        first one's (a run minutes later with the same bodies wrote into windows that
        maintenance had compacted meanwhile, each request loading them back from disk: a
        later run was up to 5x slower, whichever server it was)."""
        start_ms = (int(time.time() * 1000) - args.rounds * 5000 - 60_000) // 1000 * 1000
        return build(args.hosts, args.rounds, args.samples_per_request, args.clients, start_ms)

    t = time.perf_counter()
    load: Load | None = fresh_load()
    assert load is not None
    ours_per_req = sum(n for c in load.ours[1] for _, n, _ in c) // args.hosts
    n_prom = sum(len(c) for c in load.prom[0])
    prom_per_req = load.samples_per_round // n_prom
    print(
        f"built {args.rounds} rounds x {load.samples_per_round:,} samples (hostpulse: one host "
        f"per request, ~{ours_per_req} samples each; Prometheus: {n_prom} requests per round, "
        f"~{prom_per_req} samples each) in {time.perf_counter() - t:.1f} s"
    )
    hosts = sorted({h for c in load.ours[0] for _, _, h in c})
    per_round = load.samples_per_round
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        for rep in range(args.repeat):
            systems: list[tuple[str, Path | None]] = [("hostpulse", None)]
            if args.baseline_src is not None:
                systems.insert(0, ("baseline", args.baseline_src))
            for name, src in systems:
                load = load or fresh_load()
                data = root / f"{name}-{rep}"
                with our_server(data, root / f"{name}.log", src=src) as (url, proc):
                    # every host enrolls, as its agent would (a baseline from before agent
                    # keys takes no key)
                    hdr: Headers = (
                        keyed(enroll_all(url, hosts))
                        if has_agent_keys(url)
                        else lambda _: OURS_HEADERS
                    )
                    r = measure(name, url, proc.pid, "/api/v1/ingest", load.ours, hdr)
                load = None
                runs.setdefault(name, []).append(r)
                print(r.line(), flush=True)
            refs = [
                (name, start, path)
                for name, start, path, skip in (
                    ("prometheus", prometheus, "/api/v1/write", args.skip_prometheus),
                    ("victoriametrics", victoria_metrics, VM_WRITE_PATH, args.skip_vm),
                )
                if not skip
            ]
            for name, start, path in refs:
                load = load or fresh_load()
                store = root / f"{name}-{rep}"
                store.mkdir()
                with start(store, root / f"{name}.log") as (url, proc):
                    r = measure(name, url, proc.pid, path, load.prom, lambda _: WRITE_HEADERS)
                load = None
                runs.setdefault(name, []).append(r)
                print(r.line(), flush=True)
    medians = {name: median_result(rs) for name, rs in runs.items()}
    lines = [r.line() for r in medians.values()] + [r.line_all() for r in medians.values()]
    ours = runs["hostpulse"]
    for ref in ("baseline", "prometheus", "victoriametrics"):
        if ref not in runs:
            continue
        for label, fig in (
            ("samples/s", lambda r: r.rate),
            ("samples per CPU-second", lambda r: r.per_cpu),
            ("samples/s with first contact", lambda r: r.rate_all),
            ("samples per CPU-second with first contact", lambda r: r.per_cpu_all),
        ):
            ratios = sorted(fig(o) / fig(b) for o, b in zip(ours, runs[ref], strict=True))
            lines.append(
                f"ratio hostpulse / {ref}, {label}: median {ratios[(len(ratios) - 1) // 2]:.2f} "
                f"(per run: {', '.join(f'{x:.2f}' for x in ratios)})"
            )
    print("\n".join(lines))
    if args.json is not None:
        write_json(
            args.json,
            {
                name: {
                    "samples_per_s": r.rate,
                    "samples_per_cpu_s": r.per_cpu,
                    "samples_per_s_with_first_contact": r.rate_all,
                    "samples_per_cpu_s_with_first_contact": r.per_cpu_all,
                    "failed_requests": r.failed + r.first_failed,
                }
                for name, r in medians.items()
            },
        )
    if not args.no_doc:
        body = "\n".join(
            [
                f"{args.hosts} simulated hosts x ~{per_round // args.hosts} series, "
                f"{args.rounds - 1} timed rounds after round 0 (first contact); hostpulse: one "
                f"host per request with its agent key, ~{ours_per_req} samples each; Prometheus "
                f"and VictoriaMetrics: ~{prom_per_req} samples per request; {args.clients} "
                f"connections; {args.repeat} runs of each server (alternating), the median run "
                "shown; client CPU = this script's own CPU time while it sends.",
                "",
                "```",
                *lines,
                "```",
            ]
        )
        append_doc("Ingest", "python " + " ".join(sys.argv), body)


if __name__ == "__main__":
    main()
