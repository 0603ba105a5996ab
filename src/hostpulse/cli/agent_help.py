"""``hostpulse agent --help`` drawn like the typer commands' help: a usage line, the
description, and an Options panel with each option's value type and help."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def _rows(parser: argparse.ArgumentParser) -> list[tuple[Text, Text, Text]]:
    rows = []
    for action in parser._actions:  # argparse has no public list of its actions
        if not action.option_strings:
            continue
        names = ",".join(sorted(action.option_strings, key=lambda s: (not s.startswith("--"), s)))
        if action.nargs == 0:
            value = ""
        elif action.choices:
            value = "[" + "|".join(str(c) for c in action.choices) + "]"
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
            value = f"<{metavar}>"
        text = action.help or ""
        if action.choices and action.default is not None:
            text += f" [{action.default}]"
        rows.append((Text(names), Text(value), Text(text)))
    return rows


def print_help(parser: argparse.ArgumentParser, console: Console | None = None) -> None:
    console = console or Console()
    console.print()
    usage = Text(" Usage: ", style="yellow")
    usage.append(f"{parser.prog} [OPTIONS]", style="bold")
    console.print(usage)
    console.print()
    if parser.description:
        console.print(Padding(parser.description, (0, 1)))
        console.print()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(style="bold yellow", no_wrap=True)
    grid.add_column()
    for names, value, text in _rows(parser):
        grid.add_row(names, value, text)
    console.print(
        Panel(grid, title="Options", title_align="left", box=box.ROUNDED, border_style="dim")
    )
