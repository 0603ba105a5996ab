"""What ``hostpulse top`` draws: one rich renderable from the newest snapshot."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hostpulse.cli.fmt import human, human_bytes
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


def _memory(view: View) -> RenderableType:
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_column(justify="right")
    for label, pct, used, total in (
        ("mem", "memory_usage_percent", "memory_used_bytes", "memory_total_bytes"),
        ("swap", "memory_swap_usage_percent", "memory_swap_used_bytes", "memory_swap_total_bytes"),
    ):
        u, t = view.one(used), view.one(total)
        amount = f"{human_bytes(u)} / {human_bytes(t)}" if u is not None and t else ""
        table.add_row(label, bar(view.one(pct)), amount)
    return Panel(table, title="Memory")


def _disks(view: View) -> RenderableType:
    usage = Table.grid(padding=(0, 1))
    usage.add_column(style="bold", no_wrap=True, overflow="ellipsis", max_width=24)
    usage.add_column()
    for have, value in view.series.get("filesystem_usage_percent", []):
        usage.add_row(have.get("mountpoint", "?"), bar(value, 14))
    io = Table("device", "read/s", "write/s", "busy", box=None, padding=(0, 1))
    reads = view.by("disk_read_bytes_per_second", "device")
    writes = view.by("disk_write_bytes_per_second", "device")
    busy = view.by("disk_busy_percent", "device")
    for device in sorted(set(reads) | set(writes)):
        io.add_row(
            device,
            human(reads.get(device, 0.0), "bytes_per_second"),
            human(writes.get(device, 0.0), "bytes_per_second"),
            human(busy[device], "percent") if device in busy else "",
        )
    return Panel(Group(usage, io), title="Disks")


def _network(view: View) -> RenderableType:
    table = Table("interface", "in/s", "out/s", "errors", box=None, padding=(0, 1))
    rx = view.by("network_receive_bytes_per_second", "interface")
    tx = view.by("network_transmit_bytes_per_second", "interface")
    errors = view.by("network_receive_errors", "interface")
    for name in sorted(set(rx) | set(tx)):
        table.add_row(
            name,
            human(rx.get(name, 0.0), "bytes_per_second"),
            human(tx.get(name, 0.0), "bytes_per_second"),
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
            p.user[:10],
            f"{p.cpu_percent:.1f}",
            f"{p.mem_percent:.1f}",
            human_bytes(p.rss_bytes),
            str(p.threads),
            p.status,
            " ".join(p.cmdline.split()) or p.name,
        )
    counts = view.by("processes_state", "state")
    total = view.one("processes_all")
    sub = f"{total:.0f} processes" if total is not None else None
    if counts.get("running"):
        sub = f"{sub}, {counts['running']:.0f} running"
    return Panel(table, title="Top processes by CPU", subtitle=sub)


def _header(view: View) -> RenderableType:
    h = view.batch.host
    up = view.one("system_uptime_seconds")
    uptime = (
        f"up {int(up // 86400)}d {int(up % 86400 // 3600)}h {int(up % 3600 // 60)}m" if up else ""
    )
    when = datetime.fromtimestamp(view.batch.snapshots[-1].timestamp_ms / 1000).strftime("%X")
    text = Text()
    text.append(f"{h.hostname}", style="bold cyan")
    text.append(f"  {h.os}  {h.kernel} {h.arch}  {h.cpu_model}  {uptime}  {when}")
    text.append("   q quits", style="dim")
    return text


def render(batch: HostBatch | None) -> RenderableType:
    if batch is None or not batch.snapshots:
        return Panel(Text("hostpulse top: collecting the first readings…  (q quits)"), title="CPU")
    view = View.of(batch)
    layout = Layout()
    layout.split_column(
        Layout(_header(view), size=1),
        Layout(name="upper", ratio=3),
        Layout(_processes(view), name="procs", ratio=2),
    )
    layout["upper"].split_row(Layout(name="left"), Layout(name="right"))
    rows = min(len(view.by("cpu_core_busy_percent", "cpu")), 16) + 3
    layout["left"].split_column(
        Layout(_cpu(view), size=rows), Layout(_memory(view), size=4), Layout(_network(view))
    )
    layout["right"].update(_disks(view))
    return layout
