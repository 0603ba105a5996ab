"""Every benchmark in one run, at smaller sizes (about 20 minutes on a quiet 2-core machine), and
one table: each figure, its target, its reference measured in the same run (node_exporter,
Prometheus, VictoriaMetrics), the ratio, and the machine's load average while that benchmark
ran (sampled every 5 s; 1-minute load average, min-max).

Each benchmark keeps its own script; this one runs them one after the other as subprocesses
with ``--json OUT`` and reads their figures back. A benchmark that fails shows as a row saying
so (with the end of its output above the table) and the others still run.

    python bench/all.py               # print the table
    python bench/all.py --write       # ... and put it first in docs/benchmarks.md
    python bench/all.py --only ingest,query

The sizes are chosen for the time bound, not to match the sections further down in
docs/benchmarks.md (those state their own commands); a figure here compares with its
reference in the same run, which is what the ratio column is for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import DOC, machine  # noqa: E402

Row = tuple[str, str, str, str, str]  # figure, hostpulse, target, reference, ratio
Figures = dict[str, Any]


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _ratio(ours: float, ref: float, digits: int = 2) -> str:
    return f"{ours / ref:.{digits}f}" if ref else "—"


def ingest_rows(fig: Figures) -> list[Row]:
    ours = fig["hostpulse"]
    rows: list[Row] = []
    for key, label, target_vm in (
        ("samples_per_s_with_first_contact", "ingest, samples/s (first contact included)", 0.8),
        ("samples_per_cpu_s_with_first_contact", "ingest, samples per server CPU-second", 1.0),
        ("samples_per_s", "ingest, samples/s (rounds after first contact)", None),
    ):
        for ref in ("victoriametrics", "prometheus"):
            if ref not in fig:
                continue
            target = f"≥ {target_vm}x VictoriaMetrics" if target_vm and ref[0] == "v" else ""
            if key == "samples_per_s_with_first_contact" and ref == "prometheus":
                target = "≥ 300,000/s"
            rows.append(
                (
                    label,
                    _f(ours[key], 0),
                    target,
                    f"{ref} {_f(fig[ref][key], 0)}",
                    _ratio(ours[key], fig[ref][key]),
                )
            )
    failed = sum(int(v["failed_requests"]) for v in fig.values())
    rows.append(("ingest, failed requests (all systems)", str(failed), "0", "", ""))
    return rows


def storage_rows(fig: Figures) -> list[Row]:
    ours = fig["hostpulse"]["bytes_per_sample"]
    return [
        (
            "bytes per raw sample (24 h)",
            _f(ours, 2),
            "≤ 2 and ≤ VictoriaMetrics" if ref == "victoriametrics" else "",
            f"{ref} {_f(fig[ref]['bytes_per_sample'], 2)}",
            _ratio(ours, fig[ref]["bytes_per_sample"]),
        )
        for ref in ("victoriametrics", "prometheus")
    ]


def query_rows(fig: Figures) -> list[Row]:
    """The references hold the raw-path hosts' samples only (query.py's docstring), so the
    ratio is taken on those hosts: the same series in every system. The random hosts' figure
    (mostly first reads of generated history) is a row of its own, against the absolute
    target."""
    rows: list[Row] = []
    targets = {"current": 20, "24 h history": 50, "30-day history": 100}
    for name, res in fig.items():
        same = res["hostpulse_raw_path"]["p95_ms"]
        for ref in ("victoriametrics", "prometheus"):
            rows.append(
                (
                    f"query P95 ms, {name}, the same series (raw-path hosts)",
                    _f(same),
                    "≤ VictoriaMetrics" if ref == "victoriametrics" and name in targets else "",
                    f"{ref} {_f(res[ref]['p95_ms'])}",
                    _ratio(same, res[ref]["p95_ms"]),
                )
            )
        rows.append(
            (
                f"query P95 ms, {name}, random hosts",
                _f(res["hostpulse"]["p95_ms"]),
                f"< {targets[name]} ms" if name in targets else "",
                "",
                "",
            )
        )
    return rows


def alert_rows(fig: Figures) -> list[Row]:
    return [
        (
            "alert: breaching request -> webhook, P95 ms",
            _f(fig["p95_ms"]),
            "≤ 2000 ms",
            f"direct POST P50 {_f(fig['ref_p50_ms'])}",
            "",
        ),
        ("alert: breaches not delivered", f"{fig['missing']:.0f}", "0", "", ""),
    ]


def agent_rows(fig: Figures) -> list[Row]:
    rows: list[Row] = []
    for interval, r in fig.items():
        rows += [
            (
                f"agent CPU % of a core at {interval}",
                _f(r["cpu_percent"], 2),
                "≤ 0.3 %" if interval == "5s" else "",
                f"node_exporter {_f(r['node_exporter_cpu_percent'], 2)}",
                _ratio(r["cpu_percent"], r["node_exporter_cpu_percent"]),
            ),
            (
                f"agent ms per collection at {interval}",
                _f(r["ms_per_collection"]),
                "≤ node_exporter's per scrape",
                f"node_exporter {_f(r['node_exporter_ms_per_scrape'])}",
                _ratio(r["ms_per_collection"], r["node_exporter_ms_per_scrape"]),
            ),
            (
                f"agent peak RSS MB at {interval}",
                _f(r["peak_rss_mb"]),
                "≤ 35 MB",
                f"node_exporter {_f(r['node_exporter_peak_rss_mb'])}",
                "",
            ),
        ]
    return rows


def collect_rows(fig: Figures) -> list[Row]:
    ref = fig.get("node_exporter_scrape_ms")
    return [
        (
            "CPU ms per whole collection (Linux)",
            _f(fig["whole_collection_ms"], 3),
            "≤ node_exporter's scrape",
            f"node_exporter {_f(ref, 3)}" if ref else "not installed",
            _ratio(fig["whole_collection_ms"], ref) if ref else "",
        )
    ]


def auth_rows(fig: Figures) -> list[Row]:
    return [(name, _f(value, 2), "", "", "") for name, value in fig.items()]


def dashboard_rows(fig: Figures) -> list[Row]:
    return [
        ("dashboard first load, median ms", _f(fig["first_load_ms"], 0), "< 1000 ms", "", ""),
        ("dashboard JS, KB gzipped", _f(fig["js_gzip_kb"]), "≤ 300 KB", "", ""),
        (
            "dashboard sample-to-screen P95 ms",
            _f(fig["sample_to_screen_p95_ms"], 0),
            "≤ 1000",
            "",
            "",
        ),
    ]


def outage_rows(fig: Figures) -> list[Row]:
    drain = fig["drain_s"]
    return [
        ("outage: samples lost", str(fig["lost"]), "0", "", ""),
        ("outage: duplicates stored", str(fig["duplicates"]), "0", "", ""),
        (
            "outage: backlog drained in s",
            _f(drain) if drain is not None else "not drained",
            "",
            "",
            "",
        ),
    ]


def fleet_rows(fig: Figures) -> list[Row]:
    run = fig["runs"][-1]
    n = run["hosts"]
    return [
        (f"fleet {n} hosts: failed requests", str(run["failed_requests"]), "0", "", ""),
        (
            f"fleet {n} hosts: requests slower than one interval",
            str(run["requests_slower_than_interval"]),
            "0",
            "",
            "",
        ),
        (f"fleet {n} hosts: alert P95 ms", _f(run["alert_p95_ms"]), "≤ 2000", "", ""),
        (
            f"fleet {n} hosts: WebSocket sample-to-client P95 ms",
            _f(run["ws_sample_to_client_p95_ms"]),
            "≤ 1000",
            "",
            "",
        ),
        (
            f"fleet {n} hosts: RSS slope MB/min after warm-up",
            _f(run["rss_mb_slope_per_min"], 2),
            "flat",
            "",
            "",
        ),
        (
            f"fleet {n} hosts: open files slope per min",
            _f(run["open_files_slope_per_min"], 2),
            "flat",
            "",
            "",
        ),
    ]


@dataclass
class Bench:
    name: str
    script: str
    args: list[str]
    rows: Callable[[Figures], list[Row]]
    no_doc: bool = True  # the script takes --no-doc
    env: dict[str, str] = field(default_factory=dict)
    """Server settings for this run (the servers the script starts inherit them)."""


SUITE = [
    Bench("collect", "collect_cost.py", ["--runs", "50", "--scrapes", "50"], collect_rows, False),
    Bench("agent", "agent_overhead.py", ["--seconds", "40", "--intervals", "5"], agent_rows, False),
    Bench("auth", "auth_cost.py", ["--calls", "20000"], auth_rows),
    Bench(
        "ingest",
        "ingest.py",
        ["--hosts", "300", "--rounds", "16", "--samples-per-request", "500", "--clients", "16"],
        ingest_rows,
    ),
    Bench(
        "ingest-inline",
        "ingest.py",
        [
            *("--hosts", "300", "--rounds", "16", "--samples-per-request", "500"),
            *("--clients", "16", "--skip-prometheus"),
        ],
        lambda fig: [(f"{r[0]}, ingest_acceptors=0", *r[1:]) for r in ingest_rows(fig)],
        env={"HOSTPULSE_INGEST_ACCEPTORS": "0"},
    ),
    Bench("storage", "storage_size.py", ["--hosts", "4", "--hours", "24"], storage_rows),
    Bench(
        "query",
        "query.py",
        [
            "--hosts",
            "100",
            "--deep-hosts",
            "2",
            "--days",
            "1",
            "--hour-days",
            "30",
            "--repeat",
            "100",
        ],
        query_rows,
    ),
    Bench("alerts", "alert_latency.py", ["--hosts", "300", "--breaches", "20"], alert_rows),
    Bench(
        "dashboard",
        "dashboard.py",
        ["--hosts", "200", "--loads", "3", "--seconds", "10"],
        dashboard_rows,
    ),
    Bench(
        "outage", "outage.py", ["--agents", "50", "--warmup", "15", "--outage", "120"], outage_rows
    ),
    Bench(
        "fleet",
        "fleet.py",
        ["--hosts", "200", "--seconds", "150", "--sample-every", "15", "--warmup", "45"],
        fleet_rows,
    ),
]


@dataclass
class LoadSampler:
    """The 1-minute load average every ``every`` seconds, in a thread, tagged with the
    benchmark running at the time."""

    every: float = 5.0
    current: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            if self.current:
                self.samples.setdefault(self.current, []).append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.run, daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    def text(self, name: str) -> str:
        s = self.samples.get(name, [])
        return f"{min(s):.1f} to {max(s):.1f}" if s else "—"


def run_one(bench: Bench, out: Path, env: dict[str, str]) -> tuple[list[Row], float]:
    cmd = [sys.executable, str(HERE / bench.script), *bench.args, "--json", str(out)]
    if bench.no_doc:
        cmd.append("--no-doc")
    t0 = time.monotonic()
    print(f"== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    if bench.env:
        print("   with " + " ".join(f"{k}={v}" for k, v in bench.env.items()), flush=True)
    proc = subprocess.run(
        cmd, env={**env, **bench.env}, capture_output=True, text=True, check=False
    )
    took = time.monotonic() - t0
    print(proc.stdout[-4000:], flush=True)
    if proc.returncode != 0 or not out.exists():
        print(proc.stderr[-3000:], file=sys.stderr, flush=True)
        return [(f"{bench.name}: FAILED (exit {proc.returncode})", "", "", "", "")], took
    try:
        return bench.rows(json.loads(out.read_text())), took
    except (KeyError, TypeError, ValueError) as exc:  # a script's output changed shape
        return [(f"{bench.name}: unreadable figures ({exc!r})", "", "", "", "")], took


def table(results: list[tuple[Bench, list[Row], float]], loads: LoadSampler) -> str:
    head = "| figure | hostpulse | target | reference, same run | ratio | load average | took |"
    lines = [head, "| --- | ---: | --- | --- | ---: | --- | ---: |"]
    for bench, rows, took in results:
        for i, (fig, ours, target, ref, ratio) in enumerate(rows):
            load = loads.text(bench.name) if i == 0 else ""
            when = f"{took:.0f} s" if i == 0 else ""
            lines.append(f"| {fig} | {ours} | {target} | {ref} | {ratio} | {load} | {when} |")
    return "\n".join(lines)


def write_doc(text: str, command: str) -> None:
    """Put the table first in docs/benchmarks.md (after the title and before every other
    section), under a dated heading."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## All benchmarks — {when}\n\nMachine: {machine()}.  \nCommand: `{command}` "
        "(each row's own command is in the script's section below; sizes here are smaller).\n\n"
        f"{text}\n\n"
    )
    doc = DOC.read_text()
    title, _, rest = doc.partition("\n## ")
    DOC.write_text(f"{title.rstrip()}\n\n{section}## {rest}" if rest else f"{doc}\n{section}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--write", action="store_true", help="put the table first in the docs")
    ap.add_argument("--only", help="comma-separated names: " + ",".join(b.name for b in SUITE))
    args = ap.parse_args()
    suite = SUITE
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {b.name for b in SUITE}
        if unknown:
            ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        suite = [b for b in SUITE if b.name in names]
    # the scripts find `hostpulse` (agent_overhead) and the package beside this interpreter
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    loads = LoadSampler()
    sampler = loads.start()
    results: list[tuple[Bench, list[Row], float]] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for bench in suite:
            loads.current = bench.name
            rows, took = run_one(bench, Path(tmp) / f"{bench.name}.json", env)
            results.append((bench, rows, took))
    loads.stop()
    sampler.join(10)
    text = table(results, loads)
    text += f"\n\nWhole run {(time.monotonic() - began) / 60:.1f} min."
    print(text)
    if args.write:
        write_doc(text, "python " + " ".join(["bench/all.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
