"""Output of ``hostpulse agent --once``: the JSON document or tables.

The tables fit the terminal: metric names and values are never cut (label text wraps), and in
the process tables PID, name, user, CPU, memory and RSS keep their width while the command line
takes what is left and ends in an ellipsis.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from hostpulse.agent.snapshot import batch_to_json
from hostpulse.cli.fmt import human
from hostpulse.protocol import HostBatch

if TYPE_CHECKING:
    from rich.console import Console

NAME_WIDTH = 16
USER_WIDTH = 12
MIN_COMMAND_WIDTH = 12


def print_json(batch: HostBatch) -> None:
    sys.stdout.write(json.dumps(batch_to_json(batch), indent=2) + "\n")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _process_table(title: str, rows: list[dict[str, Any]], width: int) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = [
        (
            str(p["pid"]),
            _cut(p["name"], NAME_WIDTH),
            _cut(p["user"], USER_WIDTH),
            f"{p['cpu_percent']:.1f}",
            f"{p['mem_percent']:.1f}",
            human(p["rss_bytes"], "bytes"),
            " ".join(p["cmdline"].split()) or f"[{p['name']}]",
        )
        for p in rows
    ]
    headers = ("pid", "name", "user", "cpu %", "mem %", "rss")
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    # SIMPLE_HEAD without edges: one space of padding either side of each inner divider.
    command_width = max(MIN_COMMAND_WIDTH, width - sum(widths) - 3 * len(headers))
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for header, w in zip(headers, widths, strict=True):
        right = header not in ("name", "user")
        table.add_column(
            header, width=w, min_width=w, no_wrap=True, justify="right" if right else "left"
        )
    table.add_column("command", width=command_width, no_wrap=True, overflow="ellipsis")
    for c in cells:  # Text: a command line like "[kworker/0:1]" is not rich markup
        table.add_row(*(Text(s) for s in (*c[:-1], _cut(c[-1], command_width))))
    return table


def _stdout_console() -> Console:
    from rich.console import Console

    class StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich exits with status 1; the caller decides (``| head`` is not an error).
            self.quiet = True
            raise BrokenPipeError

    return StdoutConsole()


def print_table(batch: HostBatch, console: Console | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    doc = batch_to_json(batch)
    console = console or _stdout_console()
    width = console.width
    h = doc["host"]
    console.print(
        f"[bold]{h['hostname']}[/] ({h['host_id']})  {h['os']} {h['kernel']} {h['arch']}  "
        f"{h['cpu_model']}  at {doc['timestamp']}"
    )
    metrics = Table(title="Metrics", title_justify="left")
    metrics.add_column("metric", no_wrap=True)
    metrics.add_column("labels", overflow="fold")
    metrics.add_column("value", no_wrap=True, justify="right")
    for m in doc["metrics"]:
        labels = " ".join(f"{k}={v}" for k, v in m["labels"].items())
        metrics.add_row(m["name"], Text(labels), human(m["value"], m["unit"], m["name"]))
    console.print(metrics)
    # The agent's own delivery metrics exist only while shipping, never in --once: one note.
    unsupported = [u for u in doc["unsupported"] if not u["name"].startswith("agent_")]
    if unsupported:
        missing = Table(title="Unsupported here", title_justify="left")
        missing.add_column("metric", no_wrap=True)
        missing.add_column("reason")
        for u in unsupported:
            missing.add_row(u["name"], Text(u["reason"]))
        console.print(missing)
    for title, rows in (
        ("Top processes by CPU", doc["processes"]["top_cpu"]),
        ("Top processes by memory", doc["processes"]["top_memory"]),
    ):
        console.print(_process_table(title, rows, width))
    if len(unsupported) < len(doc["unsupported"]):
        console.print(Text("The agent's own agent_* metrics exist only while it ships (--server)."))
