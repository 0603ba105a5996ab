"""The `hostpulse` command. Each sub-command lives in its own module and is registered here.

The base distribution is the agent; the server's commands need the ``server`` extra. On an
agent-only install they are still listed, and running one exits 2 with the line to install it
instead of an ImportError traceback.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Annotated

import typer
from typer.core import TyperOption

from hostpulse import __version__
from hostpulse.cli import agent_cmd, top

SERVER_EXTRA_MODULES = ("fastapi", "uvicorn", "pydantic_settings", "sqlalchemy", "alembic", "numpy")
"""Import names of the ``server`` extra's packages that the server commands need at start."""

SERVER_COMMANDS = ("server", "up", "simulate", "backup", "restore")
SERVER_GROUPS = ("db", "user", "token", "key")
EXIT_CONFIG = 2


def _hide_flag_types() -> None:
    """Flags take no value, so the help's type column stays empty for them (typer prints
    ``<bool>`` there, which reads as if ``--help`` wanted an argument)."""
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign,assignment]


_hide_flag_types()

app = typer.Typer(
    name="hostpulse",
    help="Monitor the CPU, memory, disks, network and processes of your servers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def server_extra_missing() -> list[str]:
    """The ``server`` extra's modules that cannot be imported (empty on a full install)."""
    return [name for name in SERVER_EXTRA_MODULES if find_spec(name) is None]


def missing_extra_message(command: str, missing: list[str]) -> str:
    return (
        f"hostpulse {command}: this is an agent-only install (missing: {', '.join(missing)}). "
        "The server and its tools need the server extra: pip install 'hostpulse[server]'"
    )


def _register_server_commands() -> None:
    from hostpulse.cli import backup, db, keys, user
    from hostpulse.cli.server import server as server_command
    from hostpulse.cli.simulate import simulate as simulate_command
    from hostpulse.cli.up import up as up_command

    app.command("server")(server_command)
    app.command("simulate")(simulate_command)
    app.command("up")(up_command)
    app.command("backup")(backup.backup)
    app.command("restore")(backup.restore)
    app.add_typer(db.app, name="db")
    app.add_typer(user.app, name="user")
    app.add_typer(keys.tokens, name="token")
    app.add_typer(keys.keys, name="key")


def _register_placeholders(missing: list[str]) -> None:
    """Stand-ins that take any arguments and exit 2 naming the extra to install."""
    for name in (*SERVER_COMMANDS, *SERVER_GROUPS):

        def placeholder(ctx: typer.Context, _name: str = name) -> None:
            typer.echo(missing_extra_message(_name, missing), err=True)
            raise typer.Exit(EXIT_CONFIG)

        app.command(
            name,
            help="Needs the server extra: pip install 'hostpulse[server]'.",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            add_help_option=False,
        )(placeholder)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hostpulse {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the hostpulse version and exit.",
        ),
    ] = False,
) -> None:
    """hostpulse: agent, server and tools in one command."""


@app.command()
def version() -> None:
    """Print the hostpulse version."""
    typer.echo(__version__)


app.command("agent", **agent_cmd.SETTINGS)(agent_cmd.agent)
app.command("top")(top.top)

_missing = server_extra_missing()
if _missing:
    _register_placeholders(_missing)
else:
    _register_server_commands()


def main() -> None:
    app()
