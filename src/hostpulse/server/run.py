"""Run the server under uvicorn (httptools + uvloop when installed) on an already-bound socket,
so the URL is known before it starts, and call a hook once it accepts connections. With
``ingest_acceptors``, acceptor processes accept on that socket instead and hand uvicorn the
connections that are not agents' ingest (``ingest/acceptor.py``)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import socket
import time
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI

from hostpulse.server.app import create_app
from hostpulse.server.auth import redact
from hostpulse.server.config import ServerSettings
from hostpulse.server.front import Front
from hostpulse.server.ingest.acceptors import Acceptors
from hostpulse.server.timeouts import timed_http_protocol

logger = logging.getLogger(__name__)

OnStarted = Callable[[str], Awaitable[None]]
"""Called with the base URL (``http://127.0.0.1:8400``) once the server accepts requests."""

STARTUP_TIMEOUT_S = 120.0


class ListenError(OSError):
    """The listen address cannot be used (port taken, unknown host); the message names the
    settings."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: small answers go out at once, not after a delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(HOSTPULSE_HOST / --host, HOSTPULSE_PORT / --port)"
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def uvicorn_server(
    app: FastAPI, settings: ServerSettings, kind: type[uvicorn.Server] = uvicorn.Server
) -> uvicorn.Server:
    front = Front(app) if getattr(app.state, "front", False) else app
    config = uvicorn.Config(
        front,
        loop="auto",
        http=timed_http_protocol(settings.header_timeout),
        log_level=settings.log_level.lower(),
        access_log=False,
        # no permessage-deflate on the WebSocket: it compresses every frame once per client
        # (a fleet frame of 100 cards, 9.9 KB of mostly doubles: 597 us of CPU to save 38 %
        # of its bytes), which with 10 dashboards on a 2,000-host fleet was ~60 us of the
        # server's CPU per ingest request, growing with hosts x clients
        ws_per_message_deflate=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        # X-Forwarded-For / -Proto only from the configured proxies (uvicorn's default trusts
        # every local process, which could then pick the address the login throttle counts)
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        ssl_certfile=str(settings.tls_cert) if settings.tls else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls else None,
    )
    # uvicorn (re)configures its loggers in Config(): filter them afterwards
    redact.install()
    return kind(config)


async def serve_async(
    settings: ServerSettings,
    *,
    app: FastAPI | None = None,
    on_started: OnStarted | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers) or ``server.should_exit``."""
    sock = sock or bind(settings.host, settings.port)
    app = app or create_app(settings)
    acceptors = settings.acceptors
    server = uvicorn_server(app, settings, AcceptingServer if acceptors else uvicorn.Server)
    url = url_of(sock, settings.tls)

    async def announce() -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if server.should_exit or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.02)
        if acceptors:
            assert isinstance(server, AcceptingServer)
            await server.start_acceptors(acceptors, sock, app, settings)
            logger.info(
                "%d ingest acceptor process%s (ingest_acceptors=%s) accept%s the connections",
                acceptors,
                "" if acceptors == 1 else "es",
                settings.ingest_acceptors,
                "s" if acceptors == 1 else "",
            )
        logger.info("listening on %s", url)
        if on_started is not None:
            await on_started(url)

    hook = asyncio.create_task(announce())
    try:
        # with acceptors, they accept the connections on ``sock``; uvicorn gets those they hand over
        await server.serve(sockets=[] if acceptors else [sock])
    finally:
        hook.cancel()
        sock.close()


class AcceptingServer(uvicorn.Server):
    """uvicorn's server with ingest acceptor processes (``ingest/acceptors.py``) accepting
    its connections; they stop first when it shuts down."""

    acceptors: Acceptors | None = None

    async def start_acceptors(
        self, count: int, sock: socket.socket, app: FastAPI, settings: ServerSettings
    ) -> None:
        config = self.config
        ingest = app.state.hp.ingest

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        self.acceptors = Acceptors(
            count,
            sock,
            app.state,
            protocol,
            {
                "limits": dataclasses.asdict(ingest.limits),
                # the checked request, not the prepared arrays: less to pickle and copy; in
                # bench/ingest.py the two were within the 2-core machine's noise
                "prepare": False,
                "header_timeout": settings.header_timeout,
                "body_timeout": settings.body_timeout,
                "keep_alive": config.timeout_keep_alive,
            },
        )
        await self.acceptors.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.acceptors is not None:
            await self.acceptors.close()
        await super().shutdown(sockets)


GC_THRESHOLDS = (10_000, 10, 10)
"""The cyclic collector's thresholds in a server process (Python's default: 700, 10, 10).
Ingest allocates many short-lived objects per request (protobuf views, numpy arrays, dicts)
and first contact many long-lived ones (a column per series of each new host); collecting
the youngest generation every 700 allocations, and the whole heap every 70,000, cost round 0
(1,000 new hosts) about a quarter of its CPU and the steady state about a tenth (in-process,
``bench/ingest.py``'s bodies, runs alternated on the loaded 2-core machine). Reference
counting frees almost everything anyway; only garbage in cycles waits longer."""


def tune_gc() -> None:
    """Freeze what start-up created (modules, the app, the store's loaded head: never
    garbage, no need to walk it at every full collection) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(
    settings: ServerSettings, *, app: FastAPI | None = None, on_started: OnStarted | None = None
) -> None:
    """Blocking: run the server (``app``, default ``create_app(settings)``) in a fresh event
    loop (uvloop when available), the collector tuned for it (``tune_gc``) once it accepts
    requests. (The in-process test servers of ``testing.py`` keep Python's defaults.)"""

    async def started(url: str) -> None:
        tune_gc()
        if on_started is not None:
            await on_started(url)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(serve_async(settings, app=app, on_started=started))
    else:
        uvloop.run(serve_async(settings, app=app, on_started=started))
