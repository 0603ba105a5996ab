"""create_app(settings) -> FastAPI: the routes under /api/v1, the store's lifecycle and the
background maintenance job (compaction, rollups, retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from hostpulse import __version__
from hostpulse.server import edge, selfmetrics
from hostpulse.server.alert_feed import running_feed
from hostpulse.server.alerting import batch_feed, observer, running_alerts
from hostpulse.server.api import (
    agent_keys,
    alerts,
    auth,
    dashboards,
    health,
    hosts,
    ingest,
    metrics,
    users,
    ws,
)
from hostpulse.server.api import install as install_api
from hostpulse.server.auth.deps import require
from hostpulse.server.auth.lifecycle import Announce, running_auth
from hostpulse.server.auth.offline import config_of
from hostpulse.server.auth.roles import Role
from hostpulse.server.config import ServerSettings
from hostpulse.server.dashboards.repository import DashboardRepository
from hostpulse.server.dashboards.service import DashboardService
from hostpulse.server.ingest import IngestLimits, IngestService
from hostpulse.server.ingest.fastpath import IngestFastPath
from hostpulse.server.ingest.pool import running_workers
from hostpulse.server.install import AgentWheel
from hostpulse.server.live import LiveHub
from hostpulse.server.state import AppState
from hostpulse.server.static import bundled_web_dir, mount_api_docs, mount_dashboard
from hostpulse.store.base import Store
from hostpulse.store.db import Database
from hostpulse.store.exceptions import StoreUnavailableError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def open_default_store(
    settings: ServerSettings, clock: Callable[[], float], database: Database
) -> Store:
    """The store named by the settings: with ``tsdb_url`` the TSDB backend (its registry in
    ``database``), else the embedded SQLite store under ``data_dir`` unless ``database_url``
    says otherwise. On SQLite it shares ``database`` (the process's one pool); with the
    relational state in PostgreSQL it keeps its samples in its own file."""
    from hostpulse.store import HeadBudget, open_store

    if settings.tsdb_url is not None:
        from hostpulse.store.tsdb import open_tsdb_store

        return open_tsdb_store(
            settings.tsdb_url,
            database,
            tsdb_query_url=settings.tsdb_query_url,
            retention=settings.retention,
            clock=lambda: int(clock() * 1000),
            timeout_s=settings.tsdb_timeout,
        )

    return open_store(
        settings.store_url,
        retention=settings.retention,
        clock=lambda: int(clock() * 1000),
        database=database if database.dialect == "sqlite" else None,
        head_budget=HeadBudget(settings.max_head_bytes_per_host, settings.max_head_bytes),
    )


@contextlib.asynccontextmanager
async def open_backends(
    settings: ServerSettings, clock: Callable[[], float]
) -> AsyncIterator[tuple[Database, Store]]:
    """The process's ``Database`` (opened once, schema migrated) and the store on it, both
    closed on exit."""
    from hostpulse.store import resolve

    # only the server's user may enter it: the database holds channel secrets
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    resolve(settings.store_url)[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(settings.relational_url)
    try:
        await database.open()
        store = open_default_store(settings, clock, database)
        await store.start()
        try:
            yield database, store
        finally:
            await store.close()
    finally:
        await database.close()


async def maintenance_loop(
    store: Store, interval: float, clock: Callable[[], float], stop: asyncio.Event
) -> None:
    """``store.maintain(now)`` every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        started = time.perf_counter()
        try:
            await store.maintain(int(clock() * 1000))
        except Exception:  # keep the job alive; the next run retries
            logger.exception("store maintenance failed")
        else:
            logger.debug("store maintenance done", extra={"seconds": time.perf_counter() - started})


def _store_shown(settings: ServerSettings) -> str:
    if settings.tsdb_url is not None:
        from hostpulse.store.tsdb import endpoints

        return endpoints(settings.tsdb_url, settings.tsdb_query_url).shown
    return settings.store_url


async def store_unavailable(_request: Request, exc: Exception) -> Response:
    """A read the store cannot answer now (the TSDB or the database is down): 503 with
    Retry-After, the reason in ``detail``."""
    logger.error("store unavailable: %s", exc)
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


def limits_from(settings: ServerSettings) -> IngestLimits:
    return IngestLimits(
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_json_bytes=settings.max_json_bytes,
        max_future_ms=int(settings.max_future * 1000),
        max_past_ms=int(min(settings.max_past or math.inf, settings.retention_raw) * 1000),
        max_series_per_host=settings.max_series_per_host,
        series_active_window_ms=int(settings.series_active_window * 1000),
        max_batches=settings.max_batches,
        max_series_defs=settings.max_series_defs,
        max_snapshots=settings.max_snapshots,
        max_samples=settings.max_samples,
        max_head_cells=settings.max_head_cells,
        max_processes=settings.max_processes,
        max_host_labels=settings.max_host_labels,
        max_hosts=settings.max_hosts,
        max_pending=settings.ingest_max_pending,
        max_pending_bytes=settings.ingest_max_pending_bytes,
        overload_retry_after=settings.overload_retry_after,
        head_full_retry_after=max(1, math.ceil(settings.maintenance_interval)),
    )


def create_app(
    settings: ServerSettings | None = None,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    *,
    database: Database | None = None,
    fast_ingest: bool = True,
    announce: Announce | None = None,
) -> FastAPI:
    """The server. Without ``store`` the app opens (and closes) the database and the store the
    settings name (``open_backends``); a store passed in comes with its open ``database`` and
    its caller starts and closes both. ``fast_ingest=False``
    serves ingest and history through the framework routes only (same behaviour, more
    overhead; without ``IngestFastPath`` and ``api.metrics.HistoryFastPath``).
    ``announce`` shows the first admin's generated password (first start only; default: on
    the terminal, or in a 0600 file in the data directory when there is none)."""
    cfg = settings or ServerSettings()
    hub = LiveHub(
        outbox=cfg.live_outbox,
        outbox_bytes=cfg.live_outbox_bytes,
        heartbeat_s=cfg.live_heartbeat,
        fleet_every=cfg.live_fleet_every,
        clock=clock,
    )

    if (store is None) != (database is None):
        raise ValueError("create_app: pass both store and database, or neither")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = contextlib.AsyncExitStack()
        owned = store is None
        if store is None or database is None:
            db, st = await resources.enter_async_context(open_backends(cfg, clock))
        else:
            db, st = database, store
        ingest_service = IngestService(st, limits_from(cfg), clock)
        ingest_service.listeners.append(hub.publish)
        workers = cfg.ingest_workers
        if workers:
            ingest_service.workers = await resources.enter_async_context(
                running_workers(workers, ingest_service.limits, prepare=ingest_service.prepares)
            )
        resources.callback(hub.close)
        admin_password = cfg.admin_password.get_secret_value() if cfg.admin_password else None
        app.state.auth = await resources.enter_async_context(
            running_auth(
                config_of(cfg),
                db.engine,
                cfg.data_dir,
                admin_password=admin_password,
                announce=announce,
                clock=clock,
            )
        )
        app.state.auth.users.changed = hub.auth_changed
        node = None
        if cfg.redis_url is not None:
            from hostpulse.server.cluster.node import running_cluster

            node = await resources.enter_async_context(running_cluster(cfg.redis_url, hub))
            await node.attach_auth(app.state.auth)
            hub.follower = node.follow
            app.state.cluster = node
        app.state.dashboards = DashboardService(DashboardRepository(db.engine), clock)
        if cfg.alerts_enabled:
            alert_service = await resources.enter_async_context(
                running_alerts(
                    cfg,
                    db.engine,
                    st,
                    owns=None if node is None else node.membership.owns,
                    claims=None if node is None else node.claims,
                )
            )
            ingest_service.listeners.append(observer(alert_service))
            if node is not None:
                node.attach_alerts(alert_service, batch_feed(alert_service))
            app.state.alerts = alert_service
            app.state.alert_feed = await resources.enter_async_context(
                running_feed(alert_service, hub, None if node is None else node.forward_alerts)
            )
        if node is not None:
            ingest_service.listeners.append(node.on_ingest)
        app.state.hp = AppState(settings=cfg, store=st, ingest=ingest_service, clock=clock)
        stop = asyncio.Event()
        job = asyncio.create_task(maintenance_loop(st, cfg.maintenance_interval, clock, stop))
        logger.info(
            "server started",
            extra={"database": db.shown_url, "store": _store_shown(cfg) if owned else "injected"},
        )
        try:
            yield
        finally:
            stop.set()
            await job
            await resources.aclose()

    app = FastAPI(
        title="hostpulse",
        version=__version__,
        description="Ingest and query API of the hostpulse server. Everything is under /api/v1.",
        lifespan=lifespan,
        docs_url=None,  # served by mount_api_docs, from the package rather than a CDN
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    api = APIRouter(prefix=API_PREFIX)
    # public: health, ready, login/refresh/logout, enroll; every other route checks who calls
    # (docs/security.md has the table); the OpenAPI schema stays public like /docs
    viewer = [Depends(require(Role.viewer))]
    self_checking = (health, auth, users, agent_keys, ingest, alerts, dashboards, ws)
    for module in self_checking:
        api.include_router(module.router)
    for module in (hosts, metrics):
        api.include_router(module.router, dependencies=viewer)
    app.include_router(api)
    if fast_ingest:
        app.add_middleware(IngestFastPath, path=f"{API_PREFIX}/ingest")
        app.add_middleware(metrics.HistoryFastPath)
    app.state.front = fast_ingest  # run.py answers ingest and history before the stack
    edge.install(
        app,
        cors_origins=cfg.cors_origins,
        max_api_body=cfg.max_api_body_bytes,
        ingest_path=f"{API_PREFIX}/ingest",
        body_timeout=cfg.body_timeout,
    )
    app.state.live = hub
    app.state.agent_wheel = AgentWheel(cfg.data_dir / "cache")
    app.include_router(install_api.router)
    app.state.live_auth_recheck = cfg.live_auth_recheck
    routers = [m.router for m in (*self_checking, hosts, metrics)]
    selfmetrics.install(app, routers)  # outermost middleware: it times the whole answer
    app.add_exception_handler(StoreUnavailableError, store_unavailable)
    mount_api_docs(app, f"{API_PREFIX}/openapi.json")
    mount_dashboard(app, cfg.web_dir or bundled_web_dir())  # last: its route catches the rest
    return app
