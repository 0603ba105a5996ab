"""Real Prometheus-compatible TSDBs for the TSDB backend's tests: the Debian
``victoria-metrics`` (single-node) and ``prometheus`` (with its remote-write receiver), each on
a free loopback port with its own data directory, stopped by its PID; and HAProxy in front of
VictoriaMetrics rewriting the cluster URL shapes (``/insert/<tenant>/prometheus``,
``/select/<tenant>/prometheus``) to single-node's ``/prometheus`` (the Debian package has no
vminsert/vmselect)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from promserver import free_port

VICTORIA_METRICS = "/usr/bin/victoria-metrics"
PROMETHEUS = "/usr/bin/prometheus"
HAPROXY = "/usr/sbin/haproxy"
START_TIMEOUT_S = 60.0


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {START_TIMEOUT_S} s")


@contextlib.contextmanager
def _process(cmd: list[str], log: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(ready_url, proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(20)


@contextlib.contextmanager
def victoria_metrics(directory: Path, *extra: str, cache: bool = False) -> Iterator[str]:
    """VictoriaMetrics single-node as docs/tsdb.md asks for it: de-duplication of resends
    (``-dedup.minScrapeInterval=1ms``) and no hidden newest 30 s (``-search.latencyOffset=0s``).
    ``cache``: its query result cache on, as deployed (it then moves the start and end of a
    range query of 50 points or more to multiples of the step); off by default, so that a
    test's repeated query sees samples written in between. Yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        VICTORIA_METRICS,
        f"-storageDataPath={directory / 'data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
        "-dedup.minScrapeInterval=1ms",
        "-search.latencyOffset=0s",
        *([] if cache else ["-search.disableCache"]),
        "-selfScrapeInterval=0",
        "-loggerLevel=WARN",
        *extra,
    ]
    with _process(cmd, directory / "vm.log", f"{url}/health"):
        yield url


@contextlib.contextmanager
def prometheus_receiver(directory: Path, *extra: str) -> Iterator[str]:
    """Prometheus with ``--web.enable-remote-write-receiver``, no scrape targets and a one
    hour out-of-order window (resent spool data is accepted; docs/tsdb.md). Yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = directory / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n"
        "storage:\n  tsdb:\n    out_of_order_time_window: 1h\n"
    )
    cmd = [
        PROMETHEUS,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        "--log.level=warn",
        *extra,
    ]
    with _process(cmd, directory / "prometheus.log", f"{url}/-/ready"):
        yield url


@contextlib.contextmanager
def cluster_front(directory: Path, vm_url: str) -> Iterator[str]:
    """HAProxy on a free port that serves VictoriaMetrics cluster paths from a single node:
    ``/insert/<tenant>/prometheus/X`` and ``/select/<tenant>/prometheus/X`` become
    ``/prometheus/X``. Yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend = vm_url.removeprefix("http://")
    cfg = directory / "haproxy.cfg"
    cfg.write_text(
        f"""global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend cluster
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok if {{ path /health }}
    http-request deny deny_status 404 unless {{ path_reg ^/(insert|select)/[0-9]+/prometheus/ }}
    http-request replace-path ^/(insert|select)/[0-9]+(/prometheus/.*) \\2
    default_backend vm
backend vm
    server vm {backend}
"""
    )
    url = f"http://127.0.0.1:{port}"
    with _process([HAPROXY, "-f", str(cfg), "-db"], directory / "haproxy.log", f"{url}/health"):
        yield url
