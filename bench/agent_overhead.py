"""Agent overhead against Debian's prometheus-node-exporter, measured in the same run.

For each interval (5 s and 1 s by default) this starts ``hostpulse agent --interval I --listen``
and ``prometheus-node-exporter`` side by side, scrapes both every I seconds (node_exporter
collects on each scrape; the agent collects on its own schedule and serves its cache), and
reads each process's CPU time (utime + stime from /proc/<pid>/stat) and peak RSS (VmHWM).

With ``--containers N`` (default 20) the agent also reads a fixture cgroup v2 tree of N
containers laid out like a Docker/Podman/Kubernetes host's (hostpulse.agent.collectors.
containers.fixture); with ``--textfile`` (default on) both read the same textfile-collector
directory (a file of 50 series), so the comparison includes custom metrics.

With ``--ship`` the agent runs as a fleet agent does: it ships every snapshot (spool, protobuf,
gzip, HTTP) to a local ingest sink in this script that answers 200, and serves no /metrics; the
script then scrapes only node_exporter. Without it the agent serves /metrics (``--listen``) and
ships nothing.

Prints, per interval: CPU % of one core (whole window, and the median of sub-windows), CPU
seconds per collection, the ratio ours / node_exporter, and peak RSS. ``--append FILE`` adds a
Markdown section to FILE (docs/benchmarks.md).

    .venv/bin/python bench/agent_overhead.py [--seconds 60] [--intervals 5,1]
        [--containers 20] [--no-textfile] [--ship] [--append FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return len(response.read())


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        try:
            scrape(url)
            return
        except OSError:
            threading.Event().wait(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


@dataclass
class Extras:
    """What both processes read besides the system: fixture containers and textfiles."""

    cgroup_root: Path | None = None
    textfile_dir: Path | None = None


def make_extras(base: Path, containers: int, textfile: bool) -> Extras:
    from hostpulse.agent.collectors.containers.fixture import build_v2

    extras = Extras()
    if containers:
        extras.cgroup_root = base / "cgroup"
        # build_v2 adds one rootful and one rootless Podman and one containerd container
        build_v2(extras.cgroup_root, n_docker=max(0, containers - 3))
    if textfile:
        extras.textfile_dir = base / "textfiles"
        extras.textfile_dir.mkdir()
        lines = [f'bench_value{{shard="{i}"}} {i * 1.5}' for i in range(50)]
        (extras.textfile_dir / "bench.prom").write_text("\n".join(lines) + "\n")
    return extras


class Sink:
    """A stand-in ingest endpoint: reads each request and answers 200 (counts them)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.requests = 0
        self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.requests += 1
                sink.bytes += len(body)
                answer = b'{"accepted_samples": 0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_agent(
    interval: float, extras: Extras, sink: Sink | None, spool: Path
) -> tuple[subprocess.Popen[bytes], str | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    if extras.cgroup_root is not None:
        env["HOSTPULSE_CONTAINERS__CGROUP_ROOT"] = str(extras.cgroup_root)
    if extras.textfile_dir is not None:
        env["HOSTPULSE_CUSTOM__TEXTFILE_DIR"] = str(extras.textfile_dir)
    args = [HOSTPULSE, "agent", "--interval", str(interval)]
    url: str | None = None
    if sink is not None:
        env["HOSTPULSE_SHIPPER__API_KEY"] = "bench"
        args += ["--server", sink.url, "--spool-dir", str(spool)]
    else:
        port = free_port()
        args += ["--listen", f"127.0.0.1:{port}"]
        url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return proc, url


def wait_until_shipping(sink: Sink, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sink.requests == 0:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the agent shipped nothing within {timeout} s")
        threading.Event().wait(0.1)


def start_node_exporter(extras: Extras) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    textfile = (
        [f"--collector.textfile.directory={extras.textfile_dir}"] if extras.textfile_dir else []
    )
    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", *textfile],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}/metrics"


@dataclass
class Result:
    interval: float
    seconds: float
    collections: int
    ours_cpu: float  # CPU seconds over the window
    node_cpu: float
    ours_windows: list[float]  # CPU % per sub-window
    node_windows: list[float]
    ours_rss: float
    node_rss: float
    ours_bytes: int
    node_bytes: int

    @property
    def ours_percent(self) -> float:
        return self.ours_cpu / self.seconds * 100

    @property
    def node_percent(self) -> float:
        return self.node_cpu / self.seconds * 100

    @property
    def ours_per_collection_ms(self) -> float:
        return self.ours_cpu / self.collections * 1000

    @property
    def node_per_collection_ms(self) -> float:
        return self.node_cpu / self.collections * 1000

    @property
    def ratio(self) -> float:
        return self.ours_cpu / self.node_cpu if self.node_cpu else float("inf")


def measure(interval: float, seconds: float, extras: Extras, sink: Sink | None) -> Result:
    spool = Path(tempfile.mkdtemp(prefix="hostpulse-bench-spool-"))
    agent, agent_url = start_agent(interval, extras, sink, spool)
    node, node_url = start_node_exporter(extras)
    try:
        if agent_url is not None:
            wait_until_up(agent_url, agent)
        elif sink is not None:
            wait_until_shipping(sink, agent)
        wait_until_up(node_url, node)
        # warm up: two of the agent's collections (rates present, caches filled)
        threading.Event().wait(2 * interval)
        if agent_url is not None:
            scrape(agent_url)
        scrape(node_url)
        window = max(10.0, 2 * interval)
        samples: list[tuple[float, float, float]] = []
        origin = time.monotonic()
        samples.append((origin, cpu_seconds(agent.pid), cpu_seconds(node.pid)))
        k = 0
        ours_bytes = node_bytes = 0
        while True:
            k += 1
            due = origin + k * interval
            if due > origin + seconds:
                break
            threading.Event().wait(max(0.0, due - time.monotonic()))
            ours_bytes = scrape(agent_url) if agent_url is not None else 0
            node_bytes = scrape(node_url)
            samples.append((time.monotonic(), cpu_seconds(agent.pid), cpu_seconds(node.pid)))
        end = samples[-1]
        wall = end[0] - origin

        def windows(column: int) -> list[float]:
            out: list[float] = []
            start = samples[0]
            for s in samples[1:]:
                if s[0] - start[0] >= window:
                    out.append((s[column] - start[column]) / (s[0] - start[0]) * 100)
                    start = s
            return out

        return Result(
            interval=interval,
            seconds=wall,
            collections=k - 1,
            ours_cpu=end[1] - samples[0][1],
            node_cpu=end[2] - samples[0][2],
            ours_windows=windows(1),
            node_windows=windows(2),
            ours_rss=peak_rss_mb(agent.pid),
            node_rss=peak_rss_mb(node.pid),
            ours_bytes=ours_bytes,
            node_bytes=node_bytes,
        )
    finally:
        for proc in (agent, node):
            proc.terminate()
        for proc in (agent, node):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(spool, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: list[Result], command: str, shipping: bool = False) -> str:
    mode = (
        "The agent ships every snapshot to a local ingest sink (spool, protobuf, gzip, HTTP) "
        "and serves no /metrics; node_exporter is scraped by the script at the agent's interval."
        if shipping
        else "Both processes run side by side and are scraped by the script at the agent's "
        "interval."
    )
    lines = [
        f"### Agent overhead, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        "shared with other jobs running at the same time; Python "
        f"{platform.python_version()}. Command: `{command}`.",
        f"{mode} CPU from /proc/<pid>/stat (utime+stime, 10 ms ticks), RSS = VmHWM.",
        "",
        "| interval | window | collections | agent CPU % (median of windows) | "
        "node_exporter CPU % | agent ms/collection | node_exporter ms/scrape | "
        "ratio agent/node_exporter | agent peak RSS | node_exporter peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.interval:g} s | {r.seconds:.0f} s | {r.collections} | "
            f"{r.ours_percent:.2f} ({median(r.ours_windows):.2f}) | "
            f"{r.node_percent:.2f} ({median(r.node_windows):.2f}) | "
            f"{r.ours_per_collection_ms:.1f} | {r.node_per_collection_ms:.1f} | "
            f"{r.ratio:.2f} | {r.ours_rss:.1f} MB | {r.node_rss:.1f} MB |"
        )
    lines += [
        "",
        f"Exposition size: agent {results[0].ours_bytes or '(not served)'} bytes, "
        f"node_exporter {results[0].node_bytes} bytes. Targets: <= 0.3 % CPU at 5 s, "
        "<= 25 MB peak RSS shipping at 5 s, ratio <= 0.8 with containers and textfiles.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="window per interval")
    parser.add_argument("--intervals", default="5,1", help="comma-separated seconds")
    parser.add_argument("--append", type=Path, help="append the Markdown section to this file")
    parser.add_argument(
        "--containers", type=int, default=20, help="fixture containers the agent reads (0: none)"
    )
    parser.add_argument(
        "--no-textfile",
        dest="textfile",
        action="store_false",
        help="no textfile-collector directory for either process",
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help="the agent ships to a local ingest sink (as in a fleet) instead of serving /metrics",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()
    if not Path(NODE_EXPORTER).exists() or not shutil.which(HOSTPULSE):
        raise SystemExit("needs prometheus-node-exporter and an installed hostpulse")
    results = []
    sink = Sink() if args.ship else None
    try:
        with tempfile.TemporaryDirectory(prefix="hostpulse-bench-") as tmp:
            extras = make_extras(Path(tmp), args.containers, args.textfile)
            for text in args.intervals.split(","):
                interval = float(text)
                print(f"measuring interval {interval:g} s for {args.seconds:g} s ...", flush=True)
                results.append(measure(interval, args.seconds, extras, sink))
    finally:
        if sink is not None:
            sink.close()
    command = "python bench/agent_overhead.py " + " ".join(
        a for a in sys.argv[1:] if not a.startswith("--append") and not a.endswith(".md")
    )
    text = report(results, command.strip(), shipping=args.ship)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as f:
            f.write("\n" + text)
    if args.json:
        figures = {
            f"{r.interval:g}s": {
                "cpu_percent": r.ours_percent,
                "node_exporter_cpu_percent": r.node_percent,
                "ms_per_collection": r.ours_per_collection_ms,
                "node_exporter_ms_per_scrape": r.node_per_collection_ms,
                "peak_rss_mb": r.ours_rss,
                "node_exporter_peak_rss_mb": r.node_rss,
            }
            for r in results
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
