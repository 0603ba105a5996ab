"""The `hostpulse` command. Each sub-command lives in its own module and is registered here."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperOption

from hostpulse import __version__
from hostpulse.cli import agent_cmd, db, keys, top, user
from hostpulse.cli.server import server as server_command
from hostpulse.cli.simulate import simulate as simulate_command
from hostpulse.cli.up import up as up_command


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


app.command("server")(server_command)
app.command("simulate")(simulate_command)
app.command("up")(up_command)
app.add_typer(db.app, name="db")
app.add_typer(user.app, name="user")
app.add_typer(keys.tokens, name="token")
app.add_typer(keys.keys, name="key")


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


def main() -> None:
    app()
