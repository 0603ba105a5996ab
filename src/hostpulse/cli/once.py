"""Output of ``hostpulse agent --once``: the JSON document or tables."""

from __future__ import annotations

import json
import sys

from hostpulse.agent.snapshot import batch_to_json
from hostpulse.cli.fmt import human
from hostpulse.protocol import HostBatch


def print_json(batch: HostBatch) -> None:
    sys.stdout.write(json.dumps(batch_to_json(batch), indent=2) + "\n")


def print_table(batch: HostBatch) -> None:
    from rich.console import Console
    from rich.table import Table

    doc = batch_to_json(batch)
    console = Console()
    h = doc["host"]
    console.print(
        f"[bold]{h['hostname']}[/] ({h['host_id']})  {h['os']} {h['kernel']} {h['arch']}  "
        f"{h['cpu_model']}  at {doc['timestamp']}"
    )
    metrics = Table("metric", "labels", "value", title="Metrics", title_justify="left")
    for m in doc["metrics"]:
        labels = " ".join(f"{k}={v}" for k, v in m["labels"].items())
        metrics.add_row(m["name"], labels, human(m["value"], m["unit"]))
    console.print(metrics)
    if doc["unsupported"]:
        missing = Table("metric", "reason", title="Unsupported here", title_justify="left")
        for u in doc["unsupported"]:
            missing.add_row(u["name"], u["reason"])
        console.print(missing)
    for title, rows in (
        ("Top processes by CPU", doc["processes"]["top_cpu"]),
        ("Top processes by memory", doc["processes"]["top_memory"]),
    ):
        table = Table("pid", "user", "cpu %", "mem %", "rss", title=title, title_justify="left")
        table.add_column("command", no_wrap=True, overflow="ellipsis")
        for p in rows:
            table.add_row(
                str(p["pid"]),
                p["user"],
                f"{p['cpu_percent']:.1f}",
                f"{p['mem_percent']:.1f}",
                human(p["rss_bytes"], "bytes"),
                " ".join(p["cmdline"].split()) or p["name"],
            )
        console.print(table)
