"""`hostpulse up`: the server on the embedded store in the per-user data directory, with this
machine's agent feeding it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer

from hostpulse.cli.server import DataOpt, HostOpt, LogOpt, PortOpt, load_settings, setup_logging
from hostpulse.server.config import ServerSettings

logger = logging.getLogger(__name__)

LocalAgentStarter = Callable[[str, ServerSettings], Awaitable[None]]
"""Starts this machine's agent shipping to the server at the URL (the agent runtime)."""


async def no_local_agent(url: str, settings: ServerSettings) -> None:
    logger.warning("the local agent is not wired into `hostpulse up` yet; run `hostpulse agent`")


def run_up(
    settings: ServerSettings,
    start_agent: LocalAgentStarter = no_local_agent,
    echo: Callable[[str], None] = typer.echo,
) -> None:
    """The seam for ``up``: start the server, then (once it accepts requests) the local agent."""
    from hostpulse.server.run import serve

    async def started(url: str) -> None:
        echo(f"hostpulse is up: {url}  (data: {Path(settings.data_dir)}, API docs: {url}/docs)")
        await start_agent(url, settings)

    serve(settings, on_started=started)


def up(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataOpt = None,
    log_level: LogOpt = None,
) -> None:
    """Start the server with this machine's agent and print the URL."""
    settings = load_settings(host=host, port=port, data_dir=data_dir, log_level=log_level)
    setup_logging(settings.log_level)
    run_up(settings)
