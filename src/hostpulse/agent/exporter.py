"""Prometheus ``/metrics`` over the runner's latest snapshot.

A scrape never runs a collector: :class:`ExporterCache` is a snapshot sink that keeps a
reference to the newest batch, and :class:`SnapshotCollector` turns that batch into metric
families (``node_<key>``, counters ``_total``, HELP and TYPE from the catalog).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hostpulse import catalog
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
                elif s.metric.startswith(CUSTOM):  # textfile / exec plugin: as it was written
                    name = s.metric.removeprefix(CUSTOM)
                    entry = (len(self._metrics), name, _custom_family(name))
                else:
                    continue
                families[s.metric] = entry
            entry[2].add_sample(entry[1], {lb.name: lb.value for lb in s.labels}, value)
        for _, _, family in sorted(families.values(), key=lambda e: (e[0], e[1])):
            yield family


class Exporter:
    """The HTTP server for ``/metrics`` in a daemon thread; ``address`` is the bound (host, port).

    http.server with prometheus_client's handler rather than its WSGI server: wsgiref writes
    the status line and every header with a separate system call, which made serving a scrape
    cost more CPU than building the snapshot (docs/benchmarks.md).
    """

    def __init__(self, cache: ExporterCache, host: str, port: int) -> None:
        import socket
        from http.server import ThreadingHTTPServer
        from urllib.parse import urlsplit

        from prometheus_client import CollectorRegistry, MetricsHandler

        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(cache))

        class Handler(MetricsHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path != "/metrics":
                    self.send_error(404, "only /metrics is served here")
                    return
                super().do_GET()

        Handler.registry = registry

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="exporter-http", daemon=True
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
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(1.0)
