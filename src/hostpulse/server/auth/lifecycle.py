"""Runs the auth service on the process's database for the server's lifetime: the signing
secret, the first admin, the periodic write of the keys' ``last_used`` and the count of revoked
keys (``AgentKeyService.watch_revocations``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.server.auth.repository import AuthRepository
from hostpulse.server.auth.service import AuthService
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.server.auth.tokens import load_or_create_secret

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 60.0
PASSWORD_FILE = "initial-admin-password"
Announce = Callable[[str], None]
"""Shows the generated first admin password to the operator (never through logging)."""


def announce_first_admin(password: str, data_dir: Path, stream: TextIO | None = None) -> None:
    """On a terminal: print the password on it. Otherwise (a service, output going to a log or
    the journal): write it to ``data_dir/initial-admin-password`` (mode 0600) and log only
    where it is."""
    out = stream or sys.stderr
    if out.isatty():
        out.write(first_admin_message(password))
        out.flush()
        logger.info("created the first admin user 'admin' (password shown on the terminal)")
        return
    path = data_dir / PASSWORD_FILE
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a leftover of an earlier database: never reuse its mode or owner
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(password + "\n")
    logger.warning(
        "created the first admin user 'admin'; its password is in %s (readable by this user "
        "only): sign in, change it, then delete the file",
        path,
    )


def first_admin_message(password: str) -> str:
    return (
        "\n"
        "  First start: created the user 'admin' with this password (shown only once):\n"
        f"\n      {password}\n\n"
        "  Sign in with it, then change it: hostpulse user passwd admin\n\n"
    )


@contextlib.asynccontextmanager
async def running_auth(
    config: AuthConfig,
    engine: AsyncEngine,
    data_dir: Path,
    *,
    admin_password: str | None = None,
    announce: Announce | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[AuthService]:
    """The auth service on ``engine``: the process's database (``db.Database``, its tables from
    the one Alembic history), opened and closed by its owner. ``clock``: the server's wall
    clock in seconds (expiry of refresh and enrollment tokens); ``announce``: shows a generated
    first admin password (default ``announce_first_admin``)."""
    secret = load_or_create_secret(data_dir)
    stop = asyncio.Event()
    service = AuthService(
        AuthRepository(engine), secret, config, clock_ms=lambda: int(clock() * 1000)
    )
    generated = await service.users.ensure_admin(admin_password)
    if generated is not None:
        if announce is None:
            announce_first_admin(generated, data_dir)
        else:
            announce(generated)
    flusher = asyncio.create_task(_flush_loop(service, stop))
    watcher = asyncio.create_task(service.agents.watch_revocations(stop))
    try:
        yield service
    finally:
        stop.set()
        await flusher
        await watcher
        await service.agents.flush()


async def _flush_loop(service: AuthService, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=FLUSH_INTERVAL_S)
        try:
            await service.agents.flush()
        except Exception:  # keep the loop alive; the next run writes them again
            logger.exception("could not record when agent keys were last used")
