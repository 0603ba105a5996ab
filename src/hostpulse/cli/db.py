"""`hostpulse db`: the schema migrations (Alembic) of the server's databases from the command
line: the relational database (PostgreSQL when --database-url says so) and the embedded
store's SQLite file. Same flags and HOSTPULSE_* variables as `hostpulse server`."""

from __future__ import annotations

import io
from typing import Annotated

import typer
from alembic import command
from sqlalchemy import make_url

from hostpulse.cli.server import DataOpt, DbOpt, load_settings
from hostpulse.server.config import ServerSettings
from hostpulse.store import database_url, resolve
from hostpulse.store.db import alembic_config

app = typer.Typer(help="Database schema: upgrade, show the current revision, list revisions.")


def _urls(settings: ServerSettings) -> list[str]:
    """The databases the server opens: the relational one, and the store's file when that is
    another one (relational state in PostgreSQL)."""
    urls = [settings.relational_url]
    if settings.on_postgres:
        db_path = resolve(settings.store_url)[0]
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        urls.append(database_url(settings.store_url))
    else:
        resolve(settings.store_url)[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return urls


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Upgrade the schema to REVISION (the newest by default). The server also does this on
    start."""
    for url in _urls(
        load_settings(data_dir=data_dir, database_url=database_url, probe_redis=False)
    ):
        command.upgrade(alembic_config(url), revision)
        typer.echo(f"upgraded {_shown(url)} to {revision}")


@app.command()
def current(data_dir: DataOpt = None, database_url: DbOpt = None) -> None:
    """Print the schema revision of the database(s)."""
    urls = _urls(load_settings(data_dir=data_dir, database_url=database_url, probe_redis=False))
    for url in urls:
        out = io.StringIO()
        command.current(alembic_config(url, out), verbose=False)
        text = out.getvalue().rstrip() or "(no revision: empty database)"
        typer.echo(f"{_shown(url)}: {text}" if len(urls) > 1 else text)


@app.command()
def history() -> None:
    """List the known schema revisions, newest first."""
    out = io.StringIO()
    command.history(alembic_config("sqlite://", out))
    typer.echo(out.getvalue().rstrip())
