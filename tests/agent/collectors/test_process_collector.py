from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from subprocess import Popen

import pytest
from collector_helpers import FakeRoot, value, values, wait_for_line

from hostpulse.agent.collectors.processes import ProcessCollector

BUSY = "print('ready', flush=True)\nwhile True:\n    pass\n  # hostpulse-busy-marker"
HOG_MB = 400
HOG = (
    "import sys, time\n"
    f"blob = b'\\x01' * ({HOG_MB} << 20)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)  # hostpulse-memory-marker\n"
)


def set_stat_fields(root: FakeRoot, pid: int, fields: dict[int, int]) -> None:
    """Rewrite /proc/<pid>/stat fields by their proc(5) number (14 utime, 15 stime, 22 start)."""
    text = (root.proc / str(pid) / "stat").read_text()
    head, tail = text.rsplit(")", 1)
    rest = tail.split()
    for number, v in fields.items():
        rest[number - 3] = str(v)
    root.write(f"proc/{pid}/stat", head + ") " + " ".join(rest) + "\n")


@pytest.mark.parametrize("use_procfs", [True, False], ids=["procfs", "psutil"])
def test_finds_the_busy_child_in_top_cpu_and_the_hog_in_top_memory(
    spawn: Callable[[str], Popen[bytes]], use_procfs: bool
) -> None:
    busy, hog = spawn(BUSY), spawn(HOG)
    wait_for_line(busy)
    wait_for_line(hog)
    c = ProcessCollector(top_n=10, use_procfs=use_procfs)
    c.collect(time.monotonic())
    time.sleep(1.0)  # the measurement window: the busy child accumulates CPU time
    r = c.collect(time.monotonic())
    assert r.top_cpu is not None and r.top_memory is not None
    assert 2 <= len(r.top_cpu) <= 10 and 2 <= len(r.top_memory) <= 10
    top_cpu = {p.pid: p for p in r.top_cpu}
    assert busy.pid in top_cpu
    p = top_cpu[busy.pid]
    # A spinning child gets most of a core, less when the shared machine is loaded.
    assert p.cpu_percent >= 10.0
    assert [q.cpu_percent for q in r.top_cpu] == sorted(
        (q.cpu_percent for q in r.top_cpu), reverse=True
    )
    assert p.user == getpass.getuser()
    assert "hostpulse-busy-marker" in p.cmdline
    assert p.status in ("running", "sleeping") and p.threads >= 1
    top_mem = {p.pid: p for p in r.top_memory}
    assert hog.pid in top_mem
    m = top_mem[hog.pid]
    assert m.rss_bytes >= HOG_MB << 20
    assert m.cpu_percent < 5.0 < p.cpu_percent  # the hog sleeps; its CPU is measured, not lifetime
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert m.mem_percent == pytest.approx(m.rss_bytes / total * 100, abs=0.05)
    assert [q.rss_bytes for q in r.top_memory] == sorted(
        (q.rss_bytes for q in r.top_memory), reverse=True
    )
    everything = value(r, "processes_all")
    assert everything >= 3
    assert sum(values(r, "processes_state").values()) == everything
    assert value(r, "processes_threads") >= everything


def test_fixture_counts_cpu_percent_and_details(fake_root: FakeRoot) -> None:
    c = ProcessCollector(top_n=2, proc_root=str(fake_root.proc), user_name=lambda uid: f"u{uid}")
    first = c.collect(0.0)
    # pid 99 vanished (no stat), pid 300 has a garbled stat: both left out, only 300 is an error
    assert value(first, "processes_all") == 3
    assert value(first, "processes_state", state="running") == 1
    assert value(first, "processes_state", state="sleeping") == 1
    assert value(first, "processes_state", state="zombie") == 1
    assert value(first, "processes_state", state="idle") == 0
    assert value(first, "processes_threads") == 6
    assert len(first.errors) == 1 and "300" in first.errors[0]
    tck = os.sysconf("SC_CLK_TCK")
    # First reading: average over the process's life (uptime 1000 s, started at 50000 ticks).
    assert first.top_cpu is not None
    weird = first.top_cpu[0]
    assert weird.pid == 42 and weird.name == "my (weird) proc"
    assert weird.cpu_percent == pytest.approx(4000 / tck / (1000 - 50000 / tck) * 100, abs=0.01)
    assert weird.cmdline == "/usr/bin/weird --flag a b"
    assert weird.user == f"u{os.stat(fake_root.proc / '42').st_uid}"
    assert weird.rss_bytes == 100000 * os.sysconf("SC_PAGE_SIZE")
    assert weird.mem_percent == pytest.approx(weird.rss_bytes / (8_000_000 * 1024) * 100, abs=0.01)
    assert weird.threads == 4 and weird.status == "running"
    # 2 s later pid 42 used 1 more second of CPU: 50 % of one core.
    set_stat_fields(fake_root, 42, {14: 3000 + tck})  # utime
    r = c.collect(2.0)
    assert r.top_cpu is not None
    assert r.top_cpu[0].pid == 42 and r.top_cpu[0].cpu_percent == pytest.approx(50.0)
    assert r.top_memory is not None and [p.pid for p in r.top_memory] == [42, 1]


def test_a_reused_pid_is_a_new_process_not_a_cpu_spike(fake_root: FakeRoot) -> None:
    c = ProcessCollector(top_n=1, proc_root=str(fake_root.proc))
    c.collect(0.0)
    # pid 42 is now another process, started at 99000 ticks, that used 0.5 s of CPU so far
    tck = os.sysconf("SC_CLK_TCK")
    set_stat_fields(fake_root, 42, {14: tck // 4, 15: tck // 4, 22: 99000})
    fake_root.write("proc/uptime", f"{99000 / tck + 1.0} 0\n")
    r = c.collect(2.0)
    assert r.top_cpu is not None and r.top_cpu[0].pid == 42
    # Measured over its own 1 s of life, not as (new - old ticks) over the interval.
    assert r.top_cpu[0].cpu_percent == pytest.approx(50.0)
    assert value(r, "processes_all") == 3


def test_a_name_the_kernel_cut_to_15_bytes_is_completed_from_the_command_line(
    fake_root: FakeRoot,
) -> None:
    text = (fake_root.proc / "1/stat").read_text().replace("(init)", "(kube-controller)")
    fake_root.write("proc/1/stat", text)
    fake_root.write("proc/1/cmdline", "/usr/bin/kube-controller-manager\0--v=2\0")
    c = ProcessCollector(top_n=3, proc_root=str(fake_root.proc))
    r = c.collect(1.0)
    assert r.top_memory is not None
    names = {p.pid: p.name for p in r.top_memory}
    assert names[1] == "kube-controller-manager"
    assert names[42] == "my (weird) proc"  # short names stay as the kernel has them


def test_command_lines_of_listed_processes_are_read_again_every_few_collections(
    fake_root: FakeRoot,
) -> None:
    from hostpulse.agent.collectors.processes import DETAILS_REFRESH

    c = ProcessCollector(top_n=10, proc_root=str(fake_root.proc), use_procfs=True)

    def cmdline_of_42() -> str:
        r = c.collect(time.monotonic())
        assert r.top_memory is not None
        return next(p.cmdline for p in r.top_memory if p.pid == 42)

    before = cmdline_of_42()
    fake_root.write("proc/42/cmdline", "renamed\0--by-itself\0")
    seen = [cmdline_of_42() for _ in range(DETAILS_REFRESH)]
    assert seen[0] == before  # kept between reads ...
    assert seen[-1] == "renamed --by-itself"  # ... and read again within DETAILS_REFRESH
    set_stat_fields(fake_root, 42, {22: 999_999})  # the same PID, another process
    fake_root.write("proc/42/cmdline", "newcomer\0")
    assert cmdline_of_42() == "newcomer"  # a new process is read at once
