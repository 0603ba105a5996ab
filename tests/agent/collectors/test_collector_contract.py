"""The contract with the agent runtime: every catalog key of a collector is emitted or declared
unsupported, labels come in the catalog's order, and a broken source never raises."""

from __future__ import annotations

import math
import shutil
import time

import pytest
from collector_helpers import FakeRoot, FakeStatvfs

from hostpulse import catalog
from hostpulse.agent.collectors import (
    ConnectionsCollector,
    CpuCollector,
    DiskIOCollector,
    DiskUsageCollector,
    GpuCollector,
    MemoryCollector,
    NetworkCollector,
    ProcessCollector,
    SensorsCollector,
    SystemCollector,
    build_collectors,
)
from hostpulse.agent.collectors.base import Collector, Reading


def check(collector: Collector, reading: Reading, *, rates_expected: bool) -> None:
    declared = {m.key: m for m in catalog.for_collector(collector.name)}
    emitted = {s.key for s in reading.samples}
    assert emitted <= set(declared), f"{collector.name} emits keys not in the catalog"
    assert not emitted & reading.unsupported, f"{collector.name}: emitted and unsupported"
    for key, metric in declared.items():
        if key in emitted or key in reading.unsupported:
            continue
        assert metric.is_rate and not rates_expected, f"{collector.name}: {key} missing"
    for s in reading.samples:
        assert tuple(name for name, _ in s.labels) == declared[s.key].labels, s
        assert math.isfinite(s.value), s


SYSTEM_COLLECTORS = [
    "cpu",
    "memory",
    "disk_usage",
    "disk_io",
    "network",
    "connections",
    "processes",
    "system",
    "sensors",
    "gpu",
]


def test_build_collectors_gives_one_of_each_system_collector() -> None:
    collectors = build_collectors(top_n=3)
    assert [c.name for c in collectors] == SYSTEM_COLLECTORS
    assert set(SYSTEM_COLLECTORS) <= set(catalog.COLLECTORS)  # the agent's own ones come elsewhere
    kinds = [type(c) for c in collectors]
    assert kinds == [
        CpuCollector,
        MemoryCollector,
        DiskUsageCollector,
        DiskIOCollector,
        NetworkCollector,
        ConnectionsCollector,
        ProcessCollector,
        SystemCollector,
        SensorsCollector,
        GpuCollector,
    ]
    assert build_collectors()[0] is not collectors[0]  # fresh, stateful instances


@pytest.mark.parametrize("fast", [True, False], ids=["linux-fast-paths", "psutil"])
def test_every_catalog_key_is_emitted_or_unsupported_on_this_machine(fast: bool) -> None:
    if fast:
        collectors = build_collectors(top_n=5)
    else:
        collectors = [
            CpuCollector(use_procfs=False),
            MemoryCollector(use_procfs=False),
            DiskUsageCollector(use_procfs=False),
            DiskIOCollector(use_procfs=False),
            NetworkCollector(use_procfs=False),
            ConnectionsCollector(use_netlink=False),
            ProcessCollector(top_n=5, use_procfs=False),
            SystemCollector(use_procfs=False),
            SensorsCollector(),
            GpuCollector(),
        ]
    for c in collectors:
        check(c, c.collect(time.monotonic()), rates_expected=False)
    time.sleep(0.2)  # rates need time between two readings
    for c in collectors:
        r = c.collect(time.monotonic())
        check(c, r, rates_expected=True)
        # A mount or process another user keeps private is the machine's business, not a bug.
        environmental = [e for e in r.errors if "permission denied" in e.lower()]
        assert c.name in ("disk_usage", "processes") or not environmental, r.errors
        assert r.errors == environmental, r.errors
    readings = {c.name: c.collect(time.monotonic()) for c in collectors}
    assert readings["system"].system is not None
    assert readings["processes"].top_cpu and readings["processes"].top_memory


def test_fixture_tree_satisfies_the_contract(fake_root: FakeRoot) -> None:
    collectors = build_collectors(
        top_n=2, proc_root=str(fake_root.proc), sys_root=str(fake_root.sys)
    )
    by_name = {c.name: c for c in collectors}
    by_name["disk_usage"] = DiskUsageCollector(proc_root=str(fake_root.proc), statvfs=FakeStatvfs())
    for c in by_name.values():
        c.collect(1.0)
    stat = (fake_root.proc / "stat").read_text().splitlines()
    bumped = [
        " ".join(f if i != 4 else str(int(f) + 100) for i, f in enumerate(line.split()))
        if line.startswith("cpu")
        else line
        for line in stat
    ]
    fake_root.write("proc/stat", "\n".join(bumped) + "\n")  # 1 s of idle on every core
    for c in by_name.values():
        check(c, c.collect(2.0), rates_expected=c.name not in ("connections",))


def test_broken_sources_are_errors_and_never_stop_the_other_collectors(
    fake_root: FakeRoot,
) -> None:
    # Remove what the cpu, disk_io and network collectors read; the others keep working.
    (fake_root.proc / "stat").unlink()
    (fake_root.proc / "diskstats").unlink()
    shutil.rmtree(fake_root.proc / "net")
    collectors = build_collectors(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    readings = {c.name: c.collect(5.0) for c in collectors}  # none of them raises
    assert any("stat" in e for e in readings["cpu"].errors)
    assert readings["disk_io"].errors and readings["network"].errors
    assert {s.key for s in readings["cpu"].samples} >= {"cpu_load1", "cpu_frequency_hertz"}
    assert any(s.key == "memory_total_bytes" for s in readings["memory"].samples)
    assert any(s.key == "processes_all" for s in readings["processes"].samples)
    assert readings["system"].errors  # boot time comes from /proc/stat
