"""The `hostpulse` command. Each sub-command lives in its own module and is registered here."""

from __future__ import annotations

import typer

from hostpulse import __version__
from hostpulse.cli import agent_cmd, backup, db, keys, top, user
from hostpulse.cli.server import server as server_command
from hostpulse.cli.simulate import simulate as simulate_command
from hostpulse.cli.up import up as up_command

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
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(db.app, name="db")
app.add_typer(user.app, name="user")
app.add_typer(keys.tokens, name="token")
app.add_typer(keys.keys, name="key")


@app.callback()
def root() -> None:
    """hostpulse: agent, server and tools in one command."""


@app.command()
def version() -> None:
    """Print the hostpulse version."""
    typer.echo(__version__)


app.command("agent", **agent_cmd.SETTINGS)(agent_cmd.agent)
app.command("top")(top.top)


def main() -> None:
    app()
