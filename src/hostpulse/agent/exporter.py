"""Prometheus ``/metrics`` over the runner's latest snapshot.

A scrape never runs a collector: :class:`ExporterCache` is a snapshot sink that keeps a
reference to the newest batch, and :class:`SnapshotCollector` turns that batch into metric
families (``node_<key>``, counters ``_total``, HELP and TYPE from the catalog).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hostpulse import catalog
from hostpulse.agent.snapshot import table_start
from hostpulse.protocol import HostBatch

if TYPE_CHECKING:
    from prometheus_client import Metric as PromMetric

logger = logging.getLogger(__name__)


class ExporterCache:
    """Snapshot sink: swaps in the newest batch (never blocks)."""

    def __init__(self) -> None:
        self._batch: HostBatch | None = None

    def put(self, batch: HostBatch) -> None:
        self._batch = batch

    @property
    def latest(self) -> HostBatch | None:
        return self._batch


def _family(metric: catalog.Metric) -> PromMetric:
    from prometheus_client import Metric as PromMetric

    if metric.kind is catalog.Kind.COUNTER:
        # prometheus_client appends _total to a counter family's name when it writes it.
        return PromMetric(metric.prom_name.removesuffix("_total"), metric.help, "counter")
    return PromMetric(metric.prom_name, metric.help, "gauge")


CUSTOM = "custom:"


def _custom_family(name: str) -> PromMetric:
    from prometheus_client import Metric as PromMetric

    return PromMetric(name, "Custom metric (textfile or exec plugin).", "unknown")


class SnapshotCollector:
    """A prometheus_client custom collector over an :class:`ExporterCache`."""

    def __init__(self, cache: ExporterCache) -> None:
        self._cache = cache
        self._metrics = {m.key: (i, m) for i, m in enumerate(catalog.METRICS)}
        self._builtin = {m.prom_name for m in catalog.METRICS}

    def collect(self) -> Iterator[PromMetric]:
        batch = self._cache.latest
        if batch is None or not batch.snapshots:
            return
        snap = batch.snapshots[-1]
        series = batch.series
        families: dict[str, tuple[int, str, PromMetric]] = {}
        for index, value in zip(snap.series_index, snap.values, strict=True):
            s = series[index]
            entry = families.get(s.metric)
            if entry is None:
                known = self._metrics.get(s.metric)
                if known is not None:
                    order, metric = known
                    entry = (order, metric.prom_name, _family(metric))
                elif s.metric.startswith(CUSTOM) and s.metric[len(CUSTOM) :] not in self._builtin:
                    name = s.metric.removeprefix(CUSTOM)  # textfile / exec plugin: as written
                    entry = (len(self._metrics), name, _custom_family(name))
                else:
                    continue
                families[s.metric] = entry
            entry[2].add_sample(entry[1], {lb.name: lb.value for lb in s.labels}, value)
        for _, _, family in sorted(families.values(), key=lambda e: (e[0], e[1])):
            yield family


_SPECIAL = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}  # repr of a float -> Prometheus


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class TextRenderer:
    """The Prometheus text exposition of a batch: the same samples, names, HELP and TYPE as
    ``generate_latest`` over :class:`SnapshotCollector`, without building a metric object per
    sample: the header and label text of each series is made once per series table (which rarely
    changes between snapshots), so a scrape only formats the values. With containers and
    custom metrics a snapshot has ~450 samples, and prometheus_client's writer was most of
    the agent's CPU per collection (bench/agent_overhead.py)."""

    def __init__(self) -> None:
        self._table = b""  # the host and series table the plan was made for (serialized)
        # per output line: (series index, prefix) or (-1, header lines)
        self._plan: list[tuple[int, str]] = []
        self._last: tuple[HostBatch, bytes] | None = None

    def _build(self, batch: HostBatch) -> None:
        order = {m.key: (i, m) for i, m in enumerate(catalog.METRICS)}
        # a custom metric named like a built-in one would make a second family of that name
        # (the custom collector refuses them; this keeps the exposition valid regardless)
        builtin = {m.prom_name for m in catalog.METRICS}
        families: dict[str, tuple[tuple[int, str], str, list[tuple[int, str]]]] = {}
        for index, s in enumerate(batch.series):
            fam = families.get(s.metric)
            if fam is None:
                known = order.get(s.metric)
                if known is not None:
                    rank, m = known
                    kind = {"counter": "counter"}.get(m.kind.value, "gauge")
                    name, doc = m.prom_name, m.help
                elif s.metric.startswith(CUSTOM) and s.metric[len(CUSTOM) :] not in builtin:
                    rank, name = len(order), s.metric.removeprefix(CUSTOM)
                    kind, doc = "untyped", "Custom metric (textfile or exec plugin)."
                else:
                    continue
                doc = doc.replace("\\", r"\\").replace("\n", r"\n")
                header = f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"
                fam = families[s.metric] = ((rank, name), header, [])
            labels = sorted((lb.name, lb.value) for lb in s.labels)
            text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            name = fam[0][1]
            fam[2].append((index, f"{name}{{{text}}} " if text else f"{name} "))
        plan: list[tuple[int, str]] = []
        for _, header, lines in sorted(families.values(), key=lambda f: f[0]):
            plan.append((-1, header))
            plan.extend(lines)
        self._plan = plan

    def render(self, batch: HostBatch | None) -> bytes:
        """The text of ``batch``; the same bytes again while it is the newest (scrapes between
        two collections, several scrapers)."""
        if batch is None or not batch.snapshots:
            return b""
        last = self._last
        if last is not None and last[0] is batch:
            return last[1]
        # the table changes rarely: comparing its serialized bytes is one memcmp, comparing
        # ~450 SeriesDef messages took as long as writing the text (about 220 µs each)
        table = table_start(batch.SerializeToString(), self._table)
        if table is not self._table or not self._plan:
            self._build(batch)
            self._table = table
        text = self._text(batch)
        self._last = (batch, text)
        return text

    def _text(self, batch: HostBatch) -> bytes:
        snap = batch.snapshots[-1]
        got: list[float | None] = [None] * len(batch.series)
        for index, v in zip(snap.series_index, snap.values, strict=True):
            if 0 <= index < len(got):
                got[index] = v
        out: list[str] = []
        pending = ""
        for index, text in self._plan:
            if index < 0:
                pending = text  # written only if the family has a value in this snapshot
                continue
            value = got[index]
            if value is None:
                continue
            if pending:
                out.append(pending)
                pending = ""
            number = repr(value)
            out.append(f"{text}{_SPECIAL.get(number, number)}\n")
        return "".join(out).encode()


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST_LINE = 8192
MAX_HEADER_LINES = 100
CLIENT_TIMEOUT = 10.0
"""Seconds a scraper has to send its request; then the connection is closed."""
POLL_INTERVAL = 5.0
"""Seconds between two wake-ups of the idle serving loop (socketserver's default of 0.5 s
woke the agent ten times per collection at 5 s; ``close`` wakes it at once)."""


class Exporter:
    """The HTTP server for ``/metrics`` in a daemon thread; ``address`` is the bound (host, port).

    ``socketserver`` with a few lines of request parsing rather than ``http.server`` (which
    imports ``email`` and ``http.client``, with ``ssl``: 5 MB of the agent's memory) or
    prometheus_client's servers (wsgiref writes the status line and every header with a
    separate system call, which made serving a scrape cost more CPU than building the snapshot,
    docs/benchmarks.md). One answer per connection (``Connection: close``); GET or HEAD of
    ``/metrics`` only; request line and header lines bounded, a silent client dropped after
    ``CLIENT_TIMEOUT``.
    """

    def __init__(self, cache: ExporterCache, host: str, port: int) -> None:
        import socket
        import socketserver

        renderer = TextRenderer()
        lock = threading.Lock()

        class Handler(socketserver.StreamRequestHandler):
            timeout = CLIENT_TIMEOUT

            def handle(self) -> None:
                # a scraper that went away or never asked: nothing to answer
                with contextlib.suppress(TimeoutError, ConnectionError):
                    self._handle()

            def _handle(self) -> None:
                line = self.rfile.readline(MAX_REQUEST_LINE + 1)
                if not line:
                    return
                if len(line) > MAX_REQUEST_LINE:
                    self._answer(414, b"request line too long\n")
                    return
                parts = line.split()
                if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
                    self._answer(400, b"not an HTTP request\n")
                    return
                for _ in range(MAX_HEADER_LINES + 1):  # the headers: nothing in them matters
                    header = self.rfile.readline(MAX_REQUEST_LINE + 1)
                    if header in (b"\r\n", b"\n", b""):
                        break
                else:
                    self._answer(431, b"too many header lines\n")
                    return
                method, path = parts[0], parts[1].split(b"?", 1)[0]
                if method not in (b"GET", b"HEAD"):
                    self._answer(405, b"only GET /metrics is served here\n")
                elif path != b"/metrics":
                    self._answer(404, b"only /metrics is served here\n")
                else:
                    with lock:  # the renderer's cache is shared by concurrent scrapes
                        body = renderer.render(cache.latest)
                    self._answer(200, body, CONTENT_TYPE, head=method == b"HEAD")

            def _answer(
                self,
                status: int,
                body: bytes,
                content_type: str = "text/plain; charset=utf-8",
                *,
                head: bool = False,
            ) -> None:
                reason = _REASONS.get(status, "")
                header = (
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                self.wfile.write(header if head else header + body)

        class Server(socketserver.ThreadingTCPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(POLL_INTERVAL,),
            name="exporter-http",
            daemon=True,
        )
        self._thread.start()
        bound = self._server.server_address
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))

    @property
    def url(self) -> str:
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/metrics"

    def close(self) -> None:
        import socket

        stopper = threading.Thread(target=self._server.shutdown, daemon=True)
        stopper.start()
        # the serving loop sees the request to stop when it wakes: wake it with a connection
        # (it answers nothing to a client that sends nothing) rather than waiting a poll
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        for _ in range(50):
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
                pass
            stopper.join(0.05)
            if not stopper.is_alive():
                break
        stopper.join(POLL_INTERVAL)
        self._server.server_close()
        self._thread.join(1.0)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
}
