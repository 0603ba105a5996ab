"""`hostpulse db`: the store's schema migrations (Alembic) from the command line."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer
from alembic import command

from hostpulse.store import resolve, sqlite_url
from hostpulse.store.db import alembic_config

app = typer.Typer(help="Database schema: upgrade, show the current revision, list revisions.")

DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HOSTPULSE_DATA_DIR",
        help="Data directory (the store is its 'store' folder) [~/.local/share/hostpulse].",
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--database-url", envvar="HOSTPULSE_DATABASE_URL", help="Store URL or path."),
]


def _url(data_dir: Path | None, database_url: str | None) -> str:
    if database_url is None:
        base = data_dir or Path.home() / ".local" / "share" / "hostpulse"
        database_url = str(base / "store")
    db_path, _wal = resolve(database_url)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return sqlite_url(db_path)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    data_dir: DataOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Upgrade the schema to REVISION (the newest by default). The server also does this on
    start."""
    url = _url(data_dir, database_url)
    command.upgrade(alembic_config(url), revision)
    typer.echo(f"upgraded {url} to {revision}")


@app.command()
def current(data_dir: DataOpt = None, database_url: UrlOpt = None) -> None:
    """Print the schema revision of the database."""
    out = io.StringIO()
    command.current(alembic_config(_url(data_dir, database_url), out), verbose=False)
    typer.echo(out.getvalue().rstrip() or "(no revision: empty database)")


@app.command()
def history(data_dir: DataOpt = None, database_url: UrlOpt = None) -> None:
    """List the known schema revisions, newest first."""
    out = io.StringIO()
    command.history(alembic_config(_url(data_dir, database_url), out))
    typer.echo(out.getvalue().rstrip())
