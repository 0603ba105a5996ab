from __future__ import annotations

import os
import time
from collections.abc import Callable
from subprocess import Popen

import pytest
from collector_helpers import FakeRoot, keys, value, values, wait_for_line

from hostpulse.agent.collectors.cpu import CpuCollector

BUSY_LOOP = "import sys\nprint('ready', flush=True)\nwhile True:\n    pass\n"


def cpu_stat(total: list[int], cores: list[list[int]], ctxt: int, intr: int) -> str:
    lines = ["cpu  " + " ".join(map(str, total)) + " 0 0"]
    lines += [f"cpu{i} " + " ".join(map(str, c)) + " 0 0" for i, c in enumerate(cores)]
    lines += [f"intr {intr} 1 2", f"ctxt {ctxt}", "btime 1700000000", "softirq 100 1 2"]
    return "\n".join(lines) + "\n"


def test_fixture_usage_by_mode_from_two_readings(fake_root: FakeRoot) -> None:
    c = CpuCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    first = c.collect(100.0)
    assert "cpu_usage_percent" not in keys(first)  # no rate on the first reading
    assert value(first, "cpu_time_seconds", cpu="1", mode="user") == 1000 / os.sysconf("SC_CLK_TCK")
    # 200 ticks pass per core: core 0 spends 100 in user, 50 in system, 50 idle;
    # core 1 is idle. The whole machine: 100 user, 50 system, 250 idle of 400.
    fake_root.write(
        "proc/stat",
        cpu_stat(
            [2100, 20, 1050, 16250, 200, 40, 60, 80],
            [[1100, 10, 550, 8050, 100, 20, 30, 40], [1000, 10, 500, 8200, 100, 20, 30, 40]],
            ctxt=987654 + 5000,
            intr=123456 + 2000,
        ),
    )
    r = c.collect(102.0)
    assert value(r, "cpu_usage_percent", mode="user") == pytest.approx(25.0)
    assert value(r, "cpu_usage_percent", mode="system") == pytest.approx(12.5)
    assert value(r, "cpu_usage_percent", mode="idle") == pytest.approx(62.5)
    assert value(r, "cpu_busy_percent") == pytest.approx(37.5)
    assert value(r, "cpu_core_busy_percent", cpu="0") == pytest.approx(75.0)
    assert value(r, "cpu_core_busy_percent", cpu="1") == pytest.approx(0.0)
    assert value(r, "cpu_core_usage_percent", cpu="0", mode="user") == pytest.approx(50.0)
    assert sum(values(r, "cpu_usage_percent").values()) == pytest.approx(100.0)
    assert value(r, "cpu_context_switches_per_second") == pytest.approx(2500.0)
    assert value(r, "cpu_interrupts_per_second") == pytest.approx(1000.0)
    assert value(r, "cpu_load1") == 0.52 and value(r, "cpu_load15") == 0.30
    assert value(r, "cpu_logical_cores") == 2
    assert value(r, "cpu_physical_cores") == 2
    assert value(r, "cpu_frequency_hertz") == pytest.approx(1.9e9)  # mean of 1.8 and 2.0 GHz
    assert value(r, "cpu_frequency_max_hertz") == pytest.approx(3.5e9)
    assert r.errors == []


def test_a_core_whose_counters_went_back_gets_no_usage_never_a_negative_one(
    fake_root: FakeRoot,
) -> None:
    c = CpuCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    c.collect(1.0)
    fake_root.write(
        "proc/stat",
        cpu_stat(
            [2100, 20, 1050, 16250, 200, 40, 60, 80],
            [[1100, 10, 550, 8050, 100, 20, 30, 40], [10, 0, 5, 20, 0, 0, 0, 0]],  # re-onlined
            ctxt=987655,
            intr=123457,
        ),
    )
    r = c.collect(2.0)
    assert ("cpu", "1") not in {lb[0] for lb in values(r, "cpu_core_busy_percent")}
    assert value(r, "cpu_core_busy_percent", cpu="0") == pytest.approx(75.0)
    assert all(v >= 0 for s in r.samples if s.key.endswith("percent") for v in [s.value])


def test_without_cpufreq_the_frequency_comes_from_cpuinfo_and_max_is_unsupported(
    fake_root: FakeRoot, tmp_path: os.PathLike[str]
) -> None:
    c = CpuCollector(proc_root=str(fake_root.proc), sys_root=f"{tmp_path}/no-sys")
    r = c.collect(1.0)
    assert value(r, "cpu_frequency_hertz") == pytest.approx(2.1e9)
    assert "cpu_frequency_max_hertz" in r.unsupported
    assert value(r, "cpu_physical_cores") == 1  # cpuinfo: both threads on physical 0 core 0


def test_logical_cores_match_the_os() -> None:
    r = CpuCollector().collect(time.monotonic())
    assert value(r, "cpu_logical_cores") == os.cpu_count()
    assert len({lb[0] for lb in values(r, "cpu_time_seconds")}) == os.cpu_count()


@pytest.mark.parametrize("use_procfs", [True, False], ids=["procfs", "psutil"])
def test_a_busy_child_raises_cpu_busy(
    spawn: Callable[[str], Popen[bytes]], use_procfs: bool
) -> None:
    c = CpuCollector(use_procfs=use_procfs)
    child = spawn(BUSY_LOOP)
    wait_for_line(child)
    c.collect(time.monotonic())
    time.sleep(1.0)  # the measurement window itself: CPU time has to accumulate
    r = c.collect(time.monotonic())
    # One core of os.cpu_count() is fully busy with the child (more if others are busy too).
    floor = 100.0 / (os.cpu_count() or 1) * 0.8
    assert value(r, "cpu_busy_percent") >= floor
    # The child may move between cores; the cores' busy shares still add up to one core.
    assert sum(values(r, "cpu_core_busy_percent").values()) >= 80.0
    assert value(r, "cpu_context_switches_per_second") > 0


def test_a_mode_stepping_back_a_tick_counts_as_zero_not_a_lost_interval(
    fake_root: FakeRoot,
) -> None:
    c = CpuCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    c.collect(1.0)
    # iowait of core 0 goes 100 -> 99 while 100 user ticks pass
    fake_root.write(
        "proc/stat",
        cpu_stat(
            [2100, 20, 1000, 16000, 199, 40, 60, 80],
            [[1100, 10, 500, 8000, 99, 20, 30, 40], [1000, 10, 500, 8000, 100, 20, 30, 40]],
            ctxt=987655,
            intr=123457,
        ),
    )
    r = c.collect(2.0)
    assert value(r, "cpu_core_usage_percent", cpu="0", mode="iowait") == 0.0
    assert value(r, "cpu_core_busy_percent", cpu="0") == pytest.approx(100.0)
    assert value(r, "cpu_busy_percent") == pytest.approx(100.0)
