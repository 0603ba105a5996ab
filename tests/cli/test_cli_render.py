"""What ``agent --once`` and ``top`` draw, rendered at 80, 120 and 200 columns from a fixed
snapshot: every column keeps its content however long a command line is."""

from __future__ import annotations

import io
import subprocess
from datetime import datetime

import pytest
from conftest import HOSTPULSE, clean_env
from rich.console import Console

from hostpulse.cli.once import print_table
from hostpulse.cli.top_view import render
from hostpulse.protocol import Host, HostBatch, Label, Process, SeriesDef, Snapshot

BOOT = 1_796_543_876.0
NOW_MS = int((BOOT + 3 * 86400 + 4 * 3600 + 5 * 60) * 1000)
LONG = (
    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms4g -Xmx4g -XX:+UseG1GC "
    "-Dcom.sun.management.jmxremote.port=9010 -jar /opt/kafka/libs/kafka-server-start.jar "
    "/opt/kafka/config/server.properties --override broker.id=3 " + "x" * 300
)
PROCS = [
    Process(
        pid=4242,
        name="java",
        user="kafka",
        cpu_percent=187.5,
        mem_percent=17.2,
        rss_bytes=4 * 2**30,
        threads=211,
        status="sleeping",
        cmdline=LONG,
    ),
    Process(
        pid=1,
        name="systemd",
        user="root",
        cpu_percent=0.3,
        mem_percent=0.1,
        rss_bytes=12 * 2**20,
        threads=1,
        status="sleeping",
        cmdline="/sbin/init",
    ),
    Process(
        pid=77,
        name="kworker/0:1",
        user="root",
        cpu_percent=0.1,
        mem_percent=0.0,
        rss_bytes=0,
        threads=1,
        status="idle",
        cmdline="",
    ),
]
VALUES = {
    ("system_boot_time_seconds", ()): BOOT,
    ("system_uptime_seconds", ()): 3 * 86400 + 4 * 3600 + 5 * 60 + 6.0,
    ("memory_usage_percent", ()): 41.5,
    ("memory_used_bytes", ()): 6.5 * 2**30,
    ("memory_total_bytes", ()): 15.6 * 2**30,
    ("memory_swap_usage_percent", ()): 2.0,
    ("memory_swap_used_bytes", ()): 40 * 2**20,
    ("memory_swap_total_bytes", ()): 2 * 2**30,
    ("cpu_busy_percent", ()): 55.0,
    ("cpu_core_busy_percent", (("cpu", "0"),)): 60.0,
    ("cpu_core_busy_percent", (("cpu", "1"),)): 50.0,
    ("processes_all", ()): 312.0,
    ("processes_state", (("state", "running"),)): 3.0,
    ("filesystem_usage_percent", (("device", "/dev/sda1"), ("mountpoint", "/"))): 71.0,
    ("disk_read_bytes_per_second", (("device", "sda"),)): 1.5 * 2**20,
    ("disk_write_bytes_per_second", (("device", "sda"),)): 250 * 2**10,
    ("network_receive_bytes_per_second", (("interface", "eth0"),)): 123.4 * 2**10,
    ("network_transmit_bytes_per_second", (("interface", "eth0"),)): 45.6 * 2**10,
}


def batch() -> HostBatch:
    series = [
        SeriesDef(metric=k, labels=[Label(name=n, value=v) for n, v in labels])
        for k, labels in VALUES
    ]
    return HostBatch(
        host=Host(
            host_id="a1b2c3",
            hostname="db-1.example.com",
            os="Debian GNU/Linux 12 (bookworm)",
            kernel="6.1.0-28-amd64",
            arch="x86_64",
            cpu_model="Intel(R) Xeon(R) E-2386G CPU @ 3.50GHz",
            boot_time=BOOT,
            interval_seconds=5.0,
        ),
        series=series,
        snapshots=[
            Snapshot(
                timestamp_ms=NOW_MS,
                series_index=list(range(len(series))),
                values=list(VALUES.values()),
                top_cpu=PROCS,
                top_memory=PROCS,
            )
        ],
        unsupported=["agent_sent_snapshots", "agent_spool_bytes", "cpu_frequency_max_hertz"],
    )


def draw(width: int, what: object, height: int | None = None) -> list[str]:
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    if what == "once":
        print_table(batch(), console)
    else:
        console.print(render(batch()))
    return console.export_text().splitlines()


def row_of(lines: list[str], pid: str) -> str:
    rows = [line for line in lines if line.split()[:1] == [pid]]
    assert rows, f"no row for pid {pid}"
    return rows[0]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_once_process_tables_keep_every_column(width: int) -> None:
    lines = draw(width, "once")
    assert all(len(line) <= width for line in lines)
    header = [line for line in lines if line.split()[:2] == ["pid", "name"]]
    assert len(header) == 2  # by CPU and by memory
    assert header[0].split() == ["pid", "name", "user", "cpu", "%", "mem", "%", "rss", "command"]
    java = row_of(lines, "4242")
    assert java.split()[:7] == ["4242", "java", "kafka", "187.5", "17.2", "4.0", "GiB"]
    command = java.split("GiB", 1)[1].strip()
    assert command.endswith("…")  # cut to the terminal, not wrapped, not dropped
    assert len(command) >= 12 and LONG.startswith(command[:-1])
    assert len(java) == width or len(java.rstrip()) == width
    init = row_of(lines, "1")
    assert init.split() == ["1", "systemd", "root", "0.3", "0.1", "12.0", "MiB", "/sbin/init"]
    # a kernel thread has no command line: its name in brackets, as ps shows it
    assert row_of(lines, "77").split()[-1] == "[kworker/0:1]"


@pytest.mark.parametrize("width", [80, 120, 200])
def test_once_metric_values_are_readable(width: int) -> None:
    text = "\n".join(draw(width, "once"))
    boot = datetime.fromtimestamp(BOOT).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert boot in text  # a date and time, not 1,796,543,876.0 s
    assert "1,796,543,876" not in text
    assert "3d 4h 5m" in text  # uptime as a duration
    for name in ("system_boot_time_seconds", "memory_swap_total_bytes", "cpu_core_busy_percent"):
        assert name in text  # metric names are never cut
    # the agent's delivery metrics are not "unsupported" here: --once never ships
    assert "agent_sent_snapshots" not in text
    assert "agent_* metrics exist only while it ships (--server)" in " ".join(text.split())
    assert "cpu_frequency_max_hertz" in text  # a real gap is still listed


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40), (200, 50)])
def test_top_fits_the_terminal(width: int, height: int) -> None:
    lines = draw(width, "top", height)
    assert len(lines) <= height
    assert all(len(line) <= width for line in lines)
    header = lines[0]
    assert header.startswith("db-1.example.com")
    assert "up 3d 4h 5m" in header  # uptime and clock are kept, the CPU model is cut first
    assert lines[-1].split()[:2] == ["q", "quits"]  # the footer is the last line
    assert "312 processes, 3 running" in lines[-1]
    mem = [line for line in lines if " mem [" in line]
    swap = [line for line in lines if " swap [" in line]
    assert len(mem) == 1 and len(swap) == 1  # one line each: the bar does not wrap
    assert "41.5%" in mem[0] and "6.5 GiB" in mem[0]
    assert "2.0%" in swap[0] and "40.0 MiB" in swap[0]
    assert any("Memory (of 15.6 GiB, swap 2.0 GiB)" in line for line in lines)
    assert any(line.split()[:3] == ["│", "sda", "1.5"] or " sda " in line for line in lines)
    procs = row_of([line.strip("│ ") for line in lines], "4242")
    assert procs.split()[:8] == ["4242", "kafka", "187.5", "17.2", "4.0", "GiB", "211", "sleeping"]
    assert procs.split()[8].startswith("/usr/lib/jvm/")
    assert row_of([line.strip("│ ") for line in lines], "77").split()[-1] == "[kworker/0:1]"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOSTPULSE, *args],
        capture_output=True,
        text=True,
        env=clean_env(COLUMNS="100"),
        timeout=60,
        check=False,
    )


def test_version() -> None:
    from hostpulse import __version__

    for args in (("--version",), ("agent", "--version")):
        result = run(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"hostpulse {__version__}\n"


@pytest.mark.parametrize(
    "args", [(), ("server",), ("up",), ("top",), ("token", "create"), ("agent",)]
)
def test_help_shows_no_type_for_flags(args: tuple[str, ...]) -> None:
    result = run(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.strip().startswith("Usage: hostpulse") for line in lines)
    options = [line for line in lines if line.startswith("╭─ Options")]
    assert options, result.stdout  # the same Options panel as every typer command
    help_rows = [line.split() for line in lines if "Show this message" in line]
    assert help_rows, result.stdout
    row = help_rows[0]
    assert row[row.index("Show") - 1].split(",")[0] == "--help"  # no type between them


def test_agent_help_lists_types_like_typer() -> None:
    text = run("agent", "--help").stdout
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ --")}
    assert "<SECONDS>" in rows["--interval"]
    assert "[table|json]" in rows["--format,-f"]
    assert rows["--once"].split()[2] == "Print"  # a flag: no type column content


def test_once_into_a_closed_pipe_exits_0_quietly() -> None:
    for fmt in ("table", "json"):
        proc = subprocess.Popen(
            [HOSTPULSE, "agent", "--once", "--format", fmt],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(COLUMNS="100"),
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # like `| head -1`
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(60) == 0, err
        assert b"Traceback" not in err and b"Broken" not in err
