from __future__ import annotations

import os
import time

import pytest
from collector_helpers import FakeRoot, keys, value

from hostpulse.agent.collectors.memory import MemoryCollector

KB = 1024


def mem_total_from_proc() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * KB
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.mark.parametrize("use_procfs", [True, False], ids=["procfs", "psutil"])
def test_memory_total_is_memtotal(use_procfs: bool) -> None:
    r = MemoryCollector(use_procfs=use_procfs).collect(time.monotonic())
    assert value(r, "memory_total_bytes") == mem_total_from_proc()
    used = value(r, "memory_used_bytes")
    assert used == value(r, "memory_total_bytes") - value(r, "memory_available_bytes")
    assert 0 < value(r, "memory_usage_percent") < 100


def test_fixture_values_and_swap_rates(fake_root: FakeRoot) -> None:
    c = MemoryCollector(proc_root=str(fake_root.proc))
    first = c.collect(10.0)
    assert "memory_swap_in_bytes_per_second" not in keys(first)
    assert value(first, "memory_total_bytes") == 8_000_000 * KB
    assert value(first, "memory_used_bytes") == 3_000_000 * KB
    assert value(first, "memory_usage_percent") == pytest.approx(37.5)
    assert value(first, "memory_cached_bytes") == 2_700_000 * KB  # Cached + SReclaimable
    assert value(first, "memory_buffers_bytes") == 100_000 * KB
    assert value(first, "memory_shared_bytes") == 300_000 * KB
    assert value(first, "memory_swap_used_bytes") == 250_000 * KB
    assert value(first, "memory_swap_usage_percent") == pytest.approx(25.0)
    page = os.sysconf("SC_PAGE_SIZE")
    assert value(first, "memory_swap_in_bytes") == 1000 * page
    fake_root.write("proc/vmstat", "pswpin 1100\npswpout 2400\n")
    r = c.collect(12.0)
    assert value(r, "memory_swap_in_bytes_per_second") == pytest.approx(50 * page)
    assert value(r, "memory_swap_out_bytes_per_second") == pytest.approx(200 * page)


def test_no_swap_configured_is_zero_not_unsupported(fake_root: FakeRoot) -> None:
    text = (fake_root.proc / "meminfo").read_text()
    fake_root.write(
        "proc/meminfo",
        text.replace("SwapTotal:       1000000", "SwapTotal:       0").replace(
            "SwapFree:         750000", "SwapFree:         0"
        ),
    )
    r = MemoryCollector(proc_root=str(fake_root.proc)).collect(1.0)
    assert value(r, "memory_swap_total_bytes") == 0
    assert value(r, "memory_swap_usage_percent") == 0
    assert not r.unsupported


def test_unreadable_meminfo_is_an_error_not_an_exception(tmp_path: os.PathLike[str]) -> None:
    r = MemoryCollector(proc_root=f"{tmp_path}/missing").collect(1.0)
    assert r.samples == [] and len(r.errors) == 1 and "meminfo" in r.errors[0]
