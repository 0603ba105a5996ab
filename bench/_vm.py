"""VictoriaMetrics as the second reference: the Debian package (single-node
``/usr/bin/victoria-metrics``) started on a free loopback port with its own temporary data
directory. It takes the same Prometheus remote-write requests as Prometheus (``/api/v1/write``,
protobuf + snappy: the bodies built by ``_prom``), answers the same ``query_range``, and
``/internal/force_flush`` writes what it holds in memory to its data directory before that is
measured."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _common import dir_size, free_port, process, wait_http

VICTORIA_METRICS = "/usr/bin/victoria-metrics"
WRITE_PATH = "/api/v1/write"  # the same path and body as Prometheus's receiver


@contextlib.contextmanager
def victoria_metrics(
    data: Path, log: Path, *extra: str, retention: str = "100y"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """VictoriaMetrics on a free loopback port, data in ``data``; stopped by its PID.
    ``-search.latencyOffset=0``: answer with samples up to now (the default hides the newest
    30 s, which a benchmark that queries right after writing would miss)."""
    port = free_port()
    cmd = [
        VICTORIA_METRICS,
        f"-storageDataPath={data}",
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-retentionPeriod={retention}",
        "-search.latencyOffset=0s",
        "-selfScrapeInterval=0",
        "-loggerLevel=WARN",
        *extra,
    ]
    with process(cmd, log) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc=proc)
        yield url, proc


def flushed_size(url: str, data: Path, settle: float = 5.0, timeout: float = 300.0) -> int:
    """Bytes of the data directory after VictoriaMetrics wrote its in-memory parts to it.
    The flush answers before the part files are complete on disk (a first reading right after
    it saw 19 KB of a 475 KB directory), and background merges rewrite parts: the size is read
    once a second until it has not changed for ``settle`` seconds."""
    httpx.get(f"{url}/internal/force_flush", timeout=timeout).raise_for_status()
    deadline = time.monotonic() + timeout
    size, since = dir_size(data), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < settle:
        time.sleep(1.0)
        now = dir_size(data)
        if now != size:
            size, since = now, time.monotonic()
    return size


def series_count(url: str) -> int:
    """How many series VictoriaMetrics holds (a check that the samples arrived)."""
    r = httpx.get(f"{url}/api/v1/status/tsdb", timeout=60)
    r.raise_for_status()
    return int(r.json()["data"]["totalSeries"])
