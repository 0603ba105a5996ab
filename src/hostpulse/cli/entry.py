"""The ``hostpulse`` console script.

``hostpulse agent`` goes straight to its argparse entry so that the long-running agent never
imports typer (and the pydantic it brings); every other sub-command goes to the typer app.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["agent"]:
        from hostpulse.cli.agent import main as agent_main

        raise SystemExit(agent_main(sys.argv[2:]))
    from hostpulse.cli.main import main as typer_main

    typer_main()
