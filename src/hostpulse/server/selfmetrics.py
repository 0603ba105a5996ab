"""``GET /metrics``: the server's own health in the Prometheus text format (``hostpulse_*``).

Each app has its own ``CollectorRegistry`` (several apps share a test process). Two kinds of
metric live in it:

- request counts and latency histograms, observed by ``RequestMetrics``, a plain ASGI
  middleware around the whole app (so the ingest fast path is measured too);
- everything else is read at scrape time from state the server keeps anyway (admission,
  store, live hub, alert engine and dispatcher) by ``StateCollector``: nothing is added to
  the hot paths but a few integer increments where those counters live.

The list with the meaning of each metric is in docs/metrics.md. Access: a viewer's access
token, or the scrape token ``metrics_token`` (``HOSTPULSE_METRICS_TOKEN``) that Prometheus can
be given once (``authorization: credentials_file:``) since access tokens expire.
"""

from __future__ import annotations

import bisect
import hmac
import math
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hostpulse import __version__
from hostpulse.server.auth.deps import auth_of, http_error
from hostpulse.server.auth.exceptions import AuthError
from hostpulse.server.auth.roles import Role
from hostpulse.server.auth.service import bearer
from hostpulse.server.query_service import host_status
from hostpulse.store.exceptions import StoreClosedError
from hostpulse.store.types import HostRecord
from hostpulse.store.usage import TierUsage, tier_usage

METRICS_PATH = "/metrics"
API_PREFIX = "/api/v1/"
INGEST_PATH = "/api/v1/ingest"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
USAGE_TTL_S = 60.0
"""Block sizes per tier change only when maintenance runs: the query over the blocks table
runs when the compaction watermark moved or this long after the last time, not at every
scrape."""
HOST_STATES = ("online", "stale", "offline")
ALERT_STATES = ("pending", "firing")


def ingest_outcome(status: int) -> str:
    """What an ingest answer means for the operator, by its HTTP status."""
    if status < 300:
        return "stored"
    if status == 503:
        return "overloaded"
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "rate_limited"
    if status < 500:
        return "rejected"
    return "error"


class RequestMetrics:
    """Counts every HTTP request and times it until the last byte of the answer is sent.

    ``handler`` is the first path segment after ``/api/v1/`` when some route has it (``ingest``,
    ``hosts``, ``alerts``...), ``metrics`` for ``/metrics``, ``other_api`` for an unknown API
    path and ``web`` for the dashboard and docs pages: a bounded set whatever clients send."""

    def __init__(self, app: ASGIApp, metrics: SelfMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.metrics.observe(scope["path"], status, time.perf_counter() - started)


def _oldest_in_memory(store: object, watermark: int) -> int:
    """The start of the oldest head window (or window being compacted) when it is older than
    the watermark, else the watermark. A back-fill (an agent delivering its buffer after an
    outage, or history pushed oldest first) lands in windows below the watermark, and they
    are not in blocks before the next compactions: the watermark alone said "compacted"."""
    oldest = watermark
    if not watermark:
        return oldest
    heads = getattr(store, "heads", None) or {}
    for head in heads.values():
        if head.windows:
            oldest = min(oldest, min(head.windows))
    state = getattr(store, "state", None)
    for _, w in getattr(state, "compacting", None) or ():
        oldest = min(oldest, w)
    return int(oldest)


class LatencyCounts:
    """A histogram kept as plain integers: one ``bisect`` and two additions per request.

    With prometheus_client's labelled ``Counter``/``Histogram`` (a label lookup and a lock
    per update) the four updates of an ingest request cost 50 us; kept like this, 9 us
    (timeit, same 2-core machine, load average 15). The server runs on one event loop, so no
    lock is needed. The library still writes the exposition (``HistogramMetricFamily``)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*LATENCY_BUCKETS, math.inf), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), running))
        return out


INGEST_OUTCOMES = ("stored", "rejected", "denied", "rate_limited", "overloaded", "error")


class SelfMetrics(Collector):
    """The registry of one app, and the request counts it exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.handlers: frozenset[str] = frozenset()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, LatencyCounts] = {}
        self.ingest_outcomes = dict.fromkeys(INGEST_OUTCOMES, 0)
        self.ingest_latency = LatencyCounts()
        self.registry.register(self)
        ProcessCollector(namespace="hostpulse", registry=self.registry)

    def learn_routes(self, routers: Iterable[APIRouter]) -> None:
        """The ``handler`` values: the first path segment of every route of the API's routers
        (their paths are relative to /api/v1)."""
        found = set()
        for router in routers:
            for route in router.routes:
                path = getattr(route, "path", "")
                found.add(path.strip("/").split("/", 1)[0])
        self.handlers = frozenset(found - {""})

    def handler_of(self, path: str) -> str:
        if path == METRICS_PATH:
            return "metrics"
        if not path.startswith(API_PREFIX):
            return "web"
        segment = path[len(API_PREFIX) :].split("/", 1)[0]
        return segment if segment in self.handlers else "other_api"

    def observe(self, path: str, status: int, seconds: float) -> None:
        handler = self.handler_of(path)
        key = (handler, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(handler)
        if hist is None:
            hist = self.latency[handler] = LatencyCounts()
        hist.observe(seconds)
        if path == INGEST_PATH:
            self.ingest_outcomes[ingest_outcome(status)] += 1
            self.ingest_latency.observe(seconds)

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "hostpulse_http_requests",
            "HTTP requests answered, by handler and status code.",
            labels=["handler", "code"],
        )
        for (handler, code), n in sorted(self.requests.items()):
            requests.add_metric([handler, str(code)], n)
        yield requests
        latency = HistogramMetricFamily(
            "hostpulse_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by handler.",
            labels=["handler"],
        )
        for handler, hist in sorted(self.latency.items()):
            latency.add_metric([handler], hist.buckets(), hist.total)
        yield latency
        ingest = CounterMetricFamily(
            "hostpulse_ingest_requests",
            "Ingest requests by outcome: stored, rejected (4xx: bad body, too large, too many "
            "series), denied (no or wrong agent key), rate_limited, overloaded (503), error.",
            labels=["outcome"],
        )
        for outcome, n in self.ingest_outcomes.items():
            ingest.add_metric([outcome], n)
        yield ingest
        ingest_latency = HistogramMetricFamily(
            "hostpulse_ingest_request_duration_seconds",
            "Time to answer an ingest request (the answer is sent once the data is durable).",
        )
        ingest_latency.add_metric([], self.ingest_latency.buckets(), self.ingest_latency.total)
        yield ingest_latency


class StateCollector(Collector):
    """Reads the server's state at scrape time. ``refresh`` (async: it may query the
    database) runs before each exposition; ``collect`` only formats what is known."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._usage: list[TierUsage] = []
        self._usage_at = -USAGE_TTL_S
        self._usage_watermark: int | None = None
        self._now_ms = 0
        self._records: list[HostRecord] = []

    async def refresh(self) -> None:
        state = self.app.state.hp
        self._now_ms = state.now_ms()
        self._records = await state.store.hosts()  # the store's own list (in memory)
        engine = getattr(state.store, "engine", None)  # the embedded store's database
        watermark = getattr(state.store, "watermark", None)
        stale = time.monotonic() - self._usage_at >= USAGE_TTL_S
        if engine is not None and (stale or watermark != self._usage_watermark):
            self._usage = await tier_usage(engine)
            self._usage_at = time.monotonic()
            self._usage_watermark = watermark

    def collect(self) -> Iterable[Metric]:
        state = getattr(self.app.state, "hp", None)
        if state is None:  # not started
            return
        info = GaugeMetricFamily(
            "hostpulse_build_info", "Always 1; the server's version.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        yield from self._ingest(state)
        yield from self._store(state.store)
        yield from self._hosts(state)
        yield from self._live()
        yield from self._cluster()
        yield from self._alerts()

    def _ingest(self, state: Any) -> Iterable[Metric]:
        service = state.ingest
        samples = CounterMetricFamily(
            "hostpulse_ingest_samples",
            "Samples in stored ingest requests: accepted (new) or duplicate (already stored, "
            "e.g. resent by an agent after a lost answer).",
            labels=["outcome"],
        )
        samples.add_metric(["accepted"], service.accepted_samples)
        samples.add_metric(["duplicate"], service.duplicate_samples)
        yield samples
        adm = service.admission
        yield GaugeMetricFamily(
            "hostpulse_ingest_admission_pending_requests",
            "Ingest requests admitted and not yet answered (decoding or waiting for the disk).",
            value=adm.pending,
        )
        yield GaugeMetricFamily(
            "hostpulse_ingest_admission_pending_bytes",
            "Body bytes of the admitted ingest requests together.",
            value=adm.pending_bytes,
        )
        yield GaugeMetricFamily(
            "hostpulse_ingest_admission_max_requests",
            "ingest_max_pending: admitted requests beyond which the server answers 503.",
            value=adm.max_requests,
        )
        yield CounterMetricFamily(
            "hostpulse_ingest_admission_refused",
            "Ingest requests answered 503 at once because the server was busy.",
            value=adm.refused,
        )

    def _store(self, store: Any) -> Iterable[Metric]:
        """The embedded store's internals; a store without them (another backend) simply
        has none of these metrics."""
        try:
            wal = store.wal
        except (AttributeError, StoreClosedError):
            wal = None
        if wal is not None:
            yield GaugeMetricFamily(
                "hostpulse_store_wal_bytes",
                "Bytes of the write-ahead log's segments on disk.",
                value=wal.bytes_on_disk(),
            )
            yield GaugeMetricFamily(
                "hostpulse_store_wal_segments",
                "Segment files of the write-ahead log.",
                value=len(wal.segments),
            )
        heads = getattr(store, "heads", None)
        if heads is not None:
            yield GaugeMetricFamily(
                "hostpulse_store_series",
                "Series known to the store.",
                value=sum(len(h.columns) for h in heads.values()),
            )
        head_bytes = getattr(store, "head_bytes", None)
        if head_bytes is not None:
            yield GaugeMetricFamily(
                "hostpulse_store_head_bytes",
                "Bytes the in-memory head holds (samples not yet on disk, kept process lists), "
                "counted against max_head_bytes.",
                value=head_bytes,
            )
        watermark = getattr(store, "watermark", None)
        if watermark is not None:
            oldest = _oldest_in_memory(store, watermark)
            lag = max(0, self._now_ms - oldest) / 1000 if oldest else 0.0
            yield GaugeMetricFamily(
                "hostpulse_store_compaction_lag_seconds",
                "Age of the oldest samples that are only in the in-memory head and the "
                "write-ahead log, not yet in blocks: the compaction watermark's, or an older "
                "window's (a back-fill below the watermark) until it is compacted (0 before "
                "the first compaction).",
                value=lag,
            )
        if self._usage:
            size = GaugeMetricFamily(
                "hostpulse_store_tier_bytes",
                "Compressed bytes of the stored blocks, by tier (raw, minute, hour rollups).",
                labels=["tier"],
            )
            blocks = GaugeMetricFamily(
                "hostpulse_store_tier_blocks", "Stored blocks, by tier.", labels=["tier"]
            )
            points = GaugeMetricFamily(
                "hostpulse_store_tier_samples",
                "Samples (raw) or points (rollups) in the stored blocks, by tier.",
                labels=["tier"],
            )
            for usage in self._usage:
                size.add_metric([usage.tier.value], usage.bytes)
                blocks.add_metric([usage.tier.value], usage.blocks)
                points.add_metric([usage.tier.value], usage.samples)
            yield from (size, blocks, points)
        bytes_on_disk = getattr(store, "bytes_on_disk", None)
        if callable(bytes_on_disk):
            yield GaugeMetricFamily(
                "hostpulse_store_disk_bytes",
                "Bytes of the store on disk: database file (with its SQLite journal) and "
                "write-ahead log.",
                value=bytes_on_disk(),
            )

    def _hosts(self, state: Any) -> Iterable[Metric]:
        cfg = state.settings
        counts = dict.fromkeys(HOST_STATES, 0)
        for rec in self._records:
            status = host_status(
                rec.last_seen_ms,
                rec.interval_seconds,
                self._now_ms,
                cfg.online_factor,
                cfg.stale_factor,
            )
            counts[str(status.value)] += 1
        hosts = GaugeMetricFamily(
            "hostpulse_hosts",
            "Hosts by status (online, stale, offline: as the dashboard shows them).",
            labels=["status"],
        )
        for name, n in counts.items():
            hosts.add_metric([name], n)
        yield hosts

    def _cluster(self) -> Iterable[Metric]:
        """With ``redis_url``: what this replica exchanged with the others."""
        node = getattr(self.app.state, "cluster", None)
        if node is None:
            return
        yield GaugeMetricFamily(
            "hostpulse_cluster_replicas",
            "Live replicas in the member list, as this replica last read it.",
            value=len(node.membership.members),
        )
        yield CounterMetricFamily(
            "hostpulse_cluster_published_messages",
            "Messages (ingest requests, invalidations) published for the other replicas.",
            value=node.published,
        )
        yield CounterMetricFamily(
            "hostpulse_cluster_dropped_messages",
            "Messages for the other replicas dropped: Redis unreachable or too slow.",
            value=node.dropped,
        )
        yield CounterMetricFamily(
            "hostpulse_cluster_received_batches",
            "Host batches of other replicas decoded here (live clients, owned hosts).",
            value=node.received_batches,
        )
        yield CounterMetricFamily(
            "hostpulse_cluster_claims_refused",
            "Notifications not sent here: already sent or being sent by another replica.",
            value=node.claims.refused,
        )

    def _live(self) -> Iterable[Metric]:
        hub = self.app.state.live
        yield GaugeMetricFamily(
            "hostpulse_live_clients", "Connected live WebSocket clients.", value=hub.clients
        )
        yield CounterMetricFamily(
            "hostpulse_live_clients_dropped",
            "Live clients disconnected because they fell live_outbox frames behind.",
            value=hub.dropped_total,
        )
        yield CounterMetricFamily(
            "hostpulse_live_dropped_frames",
            "Frames discarded with those clients (a full outbox and the frame that did not fit).",
            value=hub.dropped_total * (hub.outbox + 1),
        )
        yield CounterMetricFamily(
            "hostpulse_live_published_batches",
            "Host batches offered to live clients.",
            value=hub.published_batches,
        )

    def _alerts(self) -> Iterable[Metric]:
        service = getattr(self.app.state, "alerts", None)
        if service is None:  # alerts_enabled = false
            return
        engine = service.engine
        evaluations = CounterMetricFamily(
            "hostpulse_alert_evaluations",
            "Alert engine runs: sample (a snapshot checked against the rules) and tick "
            "(time-driven rules, due notifications).",
            labels=["trigger"],
        )
        for trigger in ("sample", "tick"):
            evaluations.add_metric([trigger], engine.evaluations[trigger])
        yield evaluations
        alerts = GaugeMetricFamily("hostpulse_alerts", "Alerts by state.", labels=["state"])
        counts = dict.fromkeys(ALERT_STATES, 0)
        for inst in engine.active():
            state = str(inst.state.value)
            if state in counts:
                counts[state] += 1
        for name, n in counts.items():
            alerts.add_metric([name], n)
        yield alerts
        sent = CounterMetricFamily(
            "hostpulse_alert_notifications",
            "Notifications by channel and outcome: sent, failed (after its retries) or "
            "dropped (the channel's queue was full).",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), n in sorted(service.dispatcher.outcomes.items()):
            sent.add_metric([channel, outcome], n)
        yield sent


def install(app: FastAPI, api_routers: Iterable[APIRouter]) -> SelfMetrics:
    """Add ``GET /metrics`` and the request middleware to ``app``; ``api_routers`` (those
    included under /api/v1) name the ``handler`` values. Call it after every other
    middleware (so that this one is outermost) and before the dashboard's catch-all route."""
    metrics = SelfMetrics()
    collector = StateCollector(app)
    metrics.registry.register(collector)

    @app.get(METRICS_PATH, include_in_schema=False)
    async def scrape(request: Request) -> Response:
        await authorize(request)
        await collector.refresh()
        # the format the scraper asks for (OpenMetrics for Prometheus, else text 0.0.4)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), headers={"content-type": content_type})

    app.add_middleware(RequestMetrics, metrics=metrics)
    metrics.learn_routes(api_routers)
    app.state.selfmetrics = metrics
    return metrics


async def authorize(request: Request) -> None:
    """The scrape token (when set) or a viewer's access token; 401/403 otherwise."""
    credential = bearer(request.headers.get("authorization"))
    token = request.app.state.hp.settings.metrics_token
    if (
        credential is not None
        and token is not None
        and hmac.compare_digest(credential.encode(), token.get_secret_value().strip().encode())
    ):
        return
    try:
        user = await auth_of(request.app.state).user(credential)
    except AuthError as exc:
        raise http_error(exc) from None
    if not user.role.allows(Role.viewer):
        raise HTTPException(403, "this needs the viewer role")
