"""What the ``user``, ``key`` and ``token`` commands share: the server's data directory and
database (the same flags and HOSTPULSE_* variables as ``hostpulse server``), and running one
operation of the auth service on them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from hostpulse.cli.server import DataOpt, DbOpt, load_settings

T = TypeVar("T")
EXIT_REFUSED = 1
EXIT_USAGE = 2

__all__ = ["DataOpt", "DbOpt", "Path", "run_auth", "when"]

if TYPE_CHECKING:
    from hostpulse.server.auth.service import AuthService

Operation = Callable[["AuthService"], Awaitable[T]]


def run_auth(data_dir: Path | None, database_url: str | None, op: Operation[T]) -> T:
    """Run ``op`` on the auth service of the server's database; a refusal is printed (with
    the reason) and exits 1, a bad input exits 2."""
    from hostpulse.server.auth.exceptions import AuthError, InvalidInput
    from hostpulse.server.auth.offline import offline_auth

    settings = load_settings(data_dir=data_dir, database_url=database_url, probe_redis=False)

    async def main() -> T:
        async with offline_auth(settings) as auth:
            return await op(auth)

    try:
        return asyncio.run(main())
    except AuthError as exc:
        typer.echo(f"error: {exc.reason}", err=True)
        raise typer.Exit(EXIT_USAGE if isinstance(exc, InvalidInput) else EXIT_REFUSED) from None


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
