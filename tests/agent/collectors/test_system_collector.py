from __future__ import annotations

import platform
import socket
import time

import psutil
import pytest
from collector_helpers import FakeRoot, value

from hostpulse.agent.collectors.system import SystemCollector


@pytest.mark.parametrize("use_procfs", [True, False], ids=["procfs", "psutil"])
def test_identity_boot_time_and_uptime_of_this_machine(use_procfs: bool) -> None:
    r = SystemCollector(use_procfs=use_procfs).collect(time.monotonic())
    info = r.system
    assert info is not None
    assert info.hostname == socket.gethostname()
    assert info.kernel == platform.release()
    assert info.arch == platform.machine()
    assert info.os and info.cpu_model
    assert info.boot_time == pytest.approx(psutil.boot_time(), abs=2)
    assert value(r, "system_uptime_seconds") == pytest.approx(time.time() - info.boot_time, abs=5)
    labels = dict(next(s.labels for s in r.samples if s.key == "system_info"))
    assert labels == {
        "hostname": info.hostname,
        "os": info.os,
        "kernel": info.kernel,
        "arch": info.arch,
        "cpu_model": info.cpu_model,
    }
    assert value(r, "system_info", hostname=info.hostname) == 1


def test_fixture_identity(fake_root: FakeRoot) -> None:
    r = SystemCollector(proc_root=str(fake_root.proc)).collect(0.0)
    assert r.system is not None
    assert r.system.hostname == "fixture-host"
    assert r.system.kernel == "6.1.0-fixture"
    assert r.system.cpu_model == "Intel(R) Xeon(R) Test CPU @ 2.00GHz"
    assert r.system.boot_time == 1_700_000_000
    assert value(r, "system_uptime_seconds") == 1000.0
