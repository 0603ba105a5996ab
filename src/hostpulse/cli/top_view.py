"""What ``hostpulse top`` draws: one rich renderable from the newest snapshot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hostpulse.cli.fmt import human, human_bytes, human_duration
from hostpulse.protocol import HostBatch

Series = list[tuple[dict[str, str], float]]


@dataclass
class View:
    """The batch's values by metric key: ``series[key] = [(labels, value), ...]``."""

    batch: HostBatch
    series: dict[str, Series] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, batch: HostBatch) -> View:
        view = cls(batch)
        snap = batch.snapshots[-1]
        for index, value in zip(snap.series_index, snap.values, strict=True):
            s = batch.series[index]
            view.series[s.metric].append(({lb.name: lb.value for lb in s.labels}, value))
        return view

    def one(self, key: str, **labels: str) -> float | None:
        for have, value in self.series.get(key, []):
            if all(have.get(k) == v for k, v in labels.items()):
                return value
        return None

    def by(self, key: str, label: str) -> dict[str, float]:
        return {have[label]: value for have, value in self.series.get(key, []) if label in have}


def bar(percent: float | None, width: int = 20) -> Text:
    if percent is None:
        return Text("[" + " " * width + "]   n/a", style="dim")
    pct = max(0.0, min(100.0, percent))
    filled = round(pct / 100 * width)
    style = "green" if pct < 60 else "yellow" if pct < 85 else "red"
    text = Text("[")
    text.append("|" * filled, style=style)
    text.append(" " * (width - filled) + "]")
    text.append(f" {pct:5.1f}%")
    return text


def _cpu(view: View) -> RenderableType:
    cores = view.by("cpu_core_busy_percent", "cpu")
    names = sorted(cores, key=lambda c: int(c) if c.isdigit() else 0)
    per_column = 16
    columns = max(1, -(-len(names) // per_column))
    width = 20 if columns == 1 else 10
    table = Table.grid(padding=(0, 1))
    for _ in range(columns):
        table.add_column(justify="right", style="bold")
        table.add_column()
    table.add_row("all", bar(view.one("cpu_busy_percent"), width), *[""] * (2 * columns - 2))
    for row in range(min(len(names), per_column)):
        cells: list[RenderableType] = []
        for col in range(columns):
            i = col * per_column + row
            if i < len(names):
                cells += [f"cpu{names[i]}", bar(cores[names[i]], width)]
        table.add_row(*cells)
    loads = [view.one(k) for k in ("cpu_load1", "cpu_load5", "cpu_load15")]
    load = " ".join(f"{v:.2f}" for v in loads if v is not None)
    return Panel(table, title="CPU", subtitle=f"load {load}" if load else None)


class _Memory:
    """Memory and swap bars sized to the panel's width, so that a row never wraps (at 80
    columns the left half leaves about 36 cells: a 20-cell bar and "2.5 GiB / 23.5 GiB" do not
    fit beside each other). The totals go in the title."""

    def __init__(self, view: View) -> None:
        self.rows = []
        for label, pct, used in (
            ("mem", "memory_usage_percent", "memory_used_bytes"),
            ("swap", "memory_swap_usage_percent", "memory_swap_used_bytes"),
        ):
            u = view.one(used)
            self.rows.append((label, view.one(pct), human_bytes(u) if u is not None else ""))

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        amount = max((len(a) for _, _, a in self.rows), default=0)
        # label (4) + space + "[" bar "] 100.0%" (bar + 9) + space + amount
        width = max(4, min(20, options.max_width - 4 - 1 - 9 - 1 - amount))
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        for label, pct, used in self.rows:
            table.add_row(label, bar(pct, width), used)
        yield table


def _memory(view: View) -> RenderableType:
    totals = [
        f"{name} {human_bytes(t)}"
        for name, key in (("of", "memory_total_bytes"), ("swap", "memory_swap_total_bytes"))
        if (t := view.one(key))
    ]
    title = "Memory" + (f" ({', '.join(totals)})" if totals else "")
    return Panel(_Memory(view), title=title)


def _disks(view: View) -> RenderableType:
    usage = Table.grid(padding=(0, 1))
    usage.add_column(style="bold", no_wrap=True, overflow="ellipsis", max_width=24)
    usage.add_column()
    for have, value in view.series.get("filesystem_usage_percent", []):
        usage.add_row(have.get("mountpoint", "?"), bar(value, 14))
    # Rates without "/s" (the headers say it) so that four columns fit half of 80 columns.
    io = Table(box=None, padding=(0, 1), pad_edge=False)
    io.add_column("device", no_wrap=True, overflow="ellipsis")
    for name in ("read/s", "write/s", "busy"):
        io.add_column(name, no_wrap=True, justify="right")
    reads = view.by("disk_read_bytes_per_second", "device")
    writes = view.by("disk_write_bytes_per_second", "device")
    busy = view.by("disk_busy_percent", "device")
    for device in sorted(set(reads) | set(writes)):
        io.add_row(
            device,
            human_bytes(reads.get(device, 0.0)),
            human_bytes(writes.get(device, 0.0)),
            human(busy[device], "percent") if device in busy else "",
        )
    return Panel(Group(usage, io), title="Disks")


def _network(view: View) -> RenderableType:
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("iface", no_wrap=True, overflow="ellipsis")
    for name in ("in/s", "out/s", "err"):
        table.add_column(name, no_wrap=True, justify="right")
    rx = view.by("network_receive_bytes_per_second", "interface")
    tx = view.by("network_transmit_bytes_per_second", "interface")
    errors = view.by("network_receive_errors", "interface")
    for name in sorted(set(rx) | set(tx)):
        table.add_row(
            name,
            human_bytes(rx.get(name, 0.0)),
            human_bytes(tx.get(name, 0.0)),
            f"{errors.get(name, 0):.0f}",
        )
    conns = view.by("netstat_tcp_connections", "state")
    sub = " ".join(f"{k} {v:.0f}" for k, v in sorted(conns.items()) if v) or None
    return Panel(table, title="Network", subtitle=f"tcp: {sub}" if sub else None)


def _processes(view: View) -> RenderableType:
    table = Table(box=None, padding=(0, 1), expand=True)
    for name in ("pid", "user", "cpu %", "mem %", "rss", "threads", "state"):
        table.add_column(
            name, no_wrap=True, justify="left" if name in ("user", "state") else "right"
        )
    table.add_column("command", no_wrap=True, overflow="ellipsis", ratio=1)
    for p in view.batch.snapshots[-1].top_cpu:
        table.add_row(
            str(p.pid),
            Text(p.user[:10]),
            f"{p.cpu_percent:.1f}",
            f"{p.mem_percent:.1f}",
            human_bytes(p.rss_bytes),
            str(p.threads),
            p.status,
            Text(" ".join(p.cmdline.split()) or f"[{p.name}]"),
        )
    return Panel(table, title="Top processes by CPU")


def _footer(view: View) -> RenderableType:
    counts = view.by("processes_state", "state")
    total = view.one("processes_all")
    parts = []
    if total is not None:
        parts.append(f"{total:.0f} processes")
    if counts.get("running"):
        parts.append(f"{counts['running']:.0f} running")
    text = Text(" q quits", style="bold")
    if parts:
        text.append("   " + ", ".join(parts), style="dim")
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _header(view: View) -> RenderableType:
    """Host and system on the left (cut with an ellipsis when narrow), uptime and clock on the
    right (always shown)."""
    h = view.batch.host
    up = view.one("system_uptime_seconds")
    when = datetime.fromtimestamp(view.batch.snapshots[-1].timestamp_ms / 1000).strftime("%X")
    left = Text(no_wrap=True, overflow="ellipsis")
    left.append(h.hostname, style="bold cyan")
    left.append(f"  {h.os}  {h.kernel} {h.arch}  {h.cpu_model}")
    right = Text(f"up {human_duration(up)}  {when}" if up else when, no_wrap=True)
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(no_wrap=True, justify="right")
    grid.add_row(left, right)
    return grid


def render(batch: HostBatch | None) -> RenderableType:
    if batch is None or not batch.snapshots:
        return Panel(Text("hostpulse top: collecting the first readings…  (q quits)"), title="CPU")
    view = View.of(batch)
    layout = Layout()
    layout.split_column(
        Layout(_header(view), size=1),
        Layout(name="upper", ratio=3),
        Layout(_processes(view), name="procs", ratio=2),
        Layout(_footer(view), size=1),
    )
    layout["upper"].split_row(Layout(name="left"), Layout(name="right"))
    rows = min(len(view.by("cpu_core_busy_percent", "cpu")), 16) + 3
    layout["left"].split_column(
        Layout(_cpu(view), size=rows), Layout(_memory(view), size=4), Layout(_network(view))
    )
    layout["right"].update(_disks(view))
    return layout
