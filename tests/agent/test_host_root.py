"""``--host-root``: an agent in a container reads the host's /proc, /sys and filesystems from
where they are mounted (the one-box Compose file mounts them under /host), tested on a fixture
root: the reported mount points are the host's, the sizes those of the directories under the
root, the OS and host id the host's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil
import pytest

from hostpulse.agent.collectors import build_collectors
from hostpulse.agent.collectors.containers.fixture import build_v2
from hostpulse.agent.config import AgentSettings, ConfigError, ContainerSettings, load_settings
from hostpulse.agent.service import build_runner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "linux"

HOST_MOUNTS = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 27 8:17 / /data rw,relatime - xfs /dev/sdb1 rw
"""
# what the container itself sees: these must not be reported
CONTAINER_MOUNTS = """\
40 1 0:50 / / ro,relatime - overlay overlay rw
41 40 8:1 / /host ro,relatime - ext4 /dev/sda1 rw
"""


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    shutil.copytree(FIXTURES, root)
    (root / "proc" / "1" / "mountinfo").write_text(HOST_MOUNTS)
    (root / "proc" / "self" / "mountinfo").write_text(CONTAINER_MOUNTS)
    (root / "data").mkdir()
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text('NAME="Fixture"\nPRETTY_NAME="Fixture Linux 7"\n')
    (root / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def test_host_root_setting(tmp_path: Path) -> None:
    s = load_settings(env={"HOSTPULSE_HOST_ROOT": "/host/"})
    assert (s.rootfs(), s.proc_root(), s.sys_root()) == ("/host", "/host/proc", "/host/sys")
    plain = AgentSettings()
    assert (plain.rootfs(), plain.proc_root(), plain.sys_root()) == ("/", "/proc", "/sys")
    with pytest.raises(ConfigError, match="host_root: expected an absolute path"):
        load_settings(env={}, overrides={"host_root": "host"})


def test_collectors_report_the_hosts_filesystems_os_and_memory(host: Path) -> None:
    s = AgentSettings(host_root=str(host))
    collectors = build_collectors(proc_root=s.proc_root(), sys_root=s.sys_root(), rootfs=s.rootfs())
    by_name = {c.name: c for c in collectors}
    usage = by_name["disk_usage"].collect(1.0)
    assert usage.errors == []
    sizes = {
        dict(x.labels)["mountpoint"]: x.value
        for x in usage.samples
        if x.key == "filesystem_size_bytes"
    }
    assert set(sizes) == {"/", "/data"}  # the host's mount points, not /host/...
    st = os.statvfs(host / "data")  # measured under the root
    assert sizes["/data"] == st.f_blocks * st.f_frsize
    devices = {dict(x.labels)["device"] for x in usage.samples}
    assert devices == {"/dev/sda1", "/dev/sdb1"}

    system = by_name["system"].collect(1.0)
    assert system.system is not None and system.system.os == "Fixture Linux 7"
    memory = by_name["memory"].collect(1.0)
    total = next(x.value for x in memory.samples if x.key == "memory_total_bytes")
    meminfo = (host / "proc" / "meminfo").read_text().split("\n")
    kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    assert total == kib * 1024  # the fixture's, not this machine's


def test_runner_uses_the_host_root(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "PROCFS_PATH", psutil.PROCFS_PATH)  # restored afterwards
    s = AgentSettings(host_root=str(host), containers=ContainerSettings(enabled=False))
    runner = build_runner(s)
    try:
        assert runner.identity.host_id == "0123456789abcdef0123456789abcdef"
        assert str(host / "proc") == psutil.PROCFS_PATH
        batch = runner.tick(everything=True)
    finally:
        runner.close()
    mounts = {
        label.value
        for series in batch.series
        if series.metric == "filesystem_size_bytes"
        for label in series.labels
        if label.name == "mountpoint"
    }
    assert mounts == {"/", "/data"}


def test_container_cgroup_root_follows_the_host_root(host: Path) -> None:
    made = build_v2(host / "sys" / "fs" / "cgroup", n_docker=3)
    collectors = build_collectors(
        proc_root=str(host / "proc"),
        sys_root=str(host / "sys"),
        rootfs=str(host),
        containers=ContainerSettings(sockets=""),
    )
    containers = next(c for c in collectors if c.name == "containers")
    reading = containers.collect(1.0)
    ids = {dict(x.labels).get("id") for x in reading.samples if x.key.startswith("container_")}
    assert {c.id[:12] for c in made if c.runtime == "docker"} <= ids
