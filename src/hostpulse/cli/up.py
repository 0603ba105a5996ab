"""`hostpulse up`: the server on the embedded store in the per-user data directory, with this
machine's agent feeding it."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from hostpulse.cli.server import (
    AdminPasswordOpt,
    AlertsOpt,
    DataOpt,
    HostOpt,
    LogOpt,
    MetricsTokenOpt,
    PortOpt,
    TlsCertOpt,
    TlsKeyOpt,
    lock_data_dir,
    start_settings,
)
from hostpulse.server.config import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

LocalAgentStarter = Callable[[str, ServerSettings], Awaitable[None]]
"""Starts this machine's agent shipping to the server at the URL (the agent runtime)."""


async def no_local_agent(url: str, settings: ServerSettings) -> None:
    logger.warning("the local agent is not wired into `hostpulse up` yet; run `hostpulse agent`")


def run_up(
    settings: ServerSettings,
    start_agent: LocalAgentStarter = no_local_agent,
    echo: Callable[[str], None] = typer.echo,
    app: FastAPI | None = None,
) -> None:
    """The seam for ``up``: start the server, then (once it accepts requests) the local agent."""
    from hostpulse.server.run import serve

    async def started(url: str) -> None:
        echo(f"hostpulse is up: {url}  (data: {Path(settings.data_dir)}, API docs: {url}/docs)")
        await start_agent(url, settings)

    serve(settings, app=app, on_started=started)


def up(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    log_level: LogOpt = None,
    admin_password: AdminPasswordOpt = None,
    alerts_config: AlertsOpt = None,
    metrics_token: MetricsTokenOpt = None,
) -> None:
    """Start the server with this machine's agent and print the URL. The first start creates
    the user admin and prints its password once (or takes --admin-password)."""
    settings = start_settings(locals())
    lock = lock_data_dir(settings)  # before the local agent opens its spool in there
    try:
        _up(settings)
    finally:
        lock.release()


def _up(settings: ServerSettings) -> None:
    from hostpulse.agent.local import LocalAgent
    from hostpulse.agent.snapshot import resolve_host_id
    from hostpulse.server.app import create_app

    # over TLS the local agent trusts exactly the server's own certificate (pinned; the
    # loopback address need not be among the names it was issued for)
    pinned = str(settings.tls_cert) if settings.tls else None
    host_id = resolve_host_id(None)
    local = LocalAgent(Path(settings.data_dir) / "spool", pinned_cert=pinned, host_id=host_id)

    app = create_app(settings)

    async def start_local(url: str, settings: ServerSettings) -> None:
        # the local agent gets this host's key from the running server's auth service (a new
        # one at each start; the previous one stops working): no token to copy around, and no
        # second connection pool on the database
        key = await app.state.auth.agents.issue(host_id)
        local.start(url, api_key=key.key)

    # uvicorn re-raises the SIGTERM it caught once the server has stopped: with a Python handler
    # in place that ends run_up here (rather than killing the process), so the agent is stopped
    # cleanly and its spool synced; what it could not deliver is sent at the next start
    from hostpulse.server.run import ListenError

    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        run_up(settings, start_local, app=app)
    except _Stopped:
        pass
    except ListenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        local.stop()
        signal.signal(signal.SIGTERM, previous)


class _Stopped(Exception):
    """SIGTERM, after the server has shut down."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped
