"""Lists ``agent`` in ``hostpulse --help`` and forwards to the lean argparse entry.

``hostpulse agent ...`` normally never reaches typer (see :mod:`hostpulse.cli.entry`); this
path is taken when the typer app is invoked directly.
"""

from __future__ import annotations

from typing import Any

import typer

from hostpulse.cli import agent as agent_cli

SETTINGS: dict[str, Any] = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,
    "help": agent_cli.DESCRIPTION,
    "short_help": "Run the agent (collect, serve /metrics) or print one snapshot.",
}


def agent(ctx: typer.Context) -> None:
    raise typer.Exit(agent_cli.main(ctx.args))
