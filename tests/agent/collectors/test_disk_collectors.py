from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from collector_helpers import FakeRoot, FakeStatvfs, keys, value, values

from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.collectors.disk import DiskIOCollector, DiskUsageCollector, real_mounts


def test_root_filesystem_size_matches_statvfs() -> None:
    r = DiskUsageCollector().collect(time.monotonic())
    st = os.statvfs("/")
    assert value(r, "filesystem_size_bytes", mountpoint="/") == st.f_blocks * st.f_frsize
    assert value(r, "filesystem_free_bytes", mountpoint="/") == pytest.approx(
        st.f_bavail * st.f_frsize, rel=0.01
    )
    mountpoints = {dict(lb)["mountpoint"] for lb in values(r, "filesystem_size_bytes")}
    assert not {"/proc", "/sys", "/dev"} & mountpoints


def test_pseudo_filesystems_and_bind_mounts_are_filtered(fake_root: FakeRoot) -> None:
    c = DiskUsageCollector(proc_root=str(fake_root.proc), statvfs=FakeStatvfs())
    r = c.collect(1.0)
    labels = set(values(r, "filesystem_size_bytes"))
    assert labels == {
        (("device", "/dev/sda1"), ("mountpoint", "/")),
        (("device", "/dev/sda2"), ("mountpoint", "/srv/my data")),
    }
    assert value(r, "filesystem_size_bytes", mountpoint="/") == 1000 * 4096
    assert value(r, "filesystem_used_bytes", mountpoint="/") == 600 * 4096
    assert value(r, "filesystem_free_bytes", mountpoint="/") == 300 * 4096
    assert value(r, "filesystem_usage_percent", mountpoint="/") == pytest.approx(600 / 900 * 100)
    assert value(r, "filesystem_inodes_used", mountpoint="/") == 750
    assert value(r, "filesystem_inodes_usage_percent", mountpoint="/") == pytest.approx(75.0)


def test_an_overlay_root_is_kept_it_is_a_container() -> None:
    mounts = procfs.parse_mountinfo(
        "1 0 0:50 / / rw - overlay overlay rw\n2 1 0:51 / /var/lib/docker/x rw - overlay o rw\n"
    )
    assert [m.mountpoint for m in real_mounts(mounts)] == ["/"]


def test_one_unreadable_mount_does_not_lose_the_others(fake_root: FakeRoot) -> None:
    denied = PermissionError(13, "Permission denied")
    c = DiskUsageCollector(
        proc_root=str(fake_root.proc), statvfs=FakeStatvfs(fail={"/srv/my data": denied})
    )
    r = c.collect(1.0)
    assert value(r, "filesystem_size_bytes", mountpoint="/") == 1000 * 4096
    assert len(values(r, "filesystem_size_bytes")) == 1
    assert len(r.errors) == 1 and "/srv/my data" in r.errors[0]


def test_filesystems_without_inode_limits_report_inodes_unsupported(fake_root: FakeRoot) -> None:
    r = DiskUsageCollector(proc_root=str(fake_root.proc), statvfs=FakeStatvfs(files=0)).collect(1)
    assert "filesystem_inodes" in r.unsupported and "filesystem_inodes" not in keys(r)
    assert len(values(r, "filesystem_size_bytes")) == 2


def diskstats_line(name: str, *fields: int) -> str:
    return f"   8       0 {name} " + " ".join(map(str, fields)) + " 0 0 0 0 0 0\n"


def test_fixture_io_rates_wait_busy_and_queue(fake_root: FakeRoot) -> None:
    c = DiskIOCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    first = c.collect(50.0)
    assert {dict(lb)["device"] for lb in values(first, "disk_read_bytes")} == {"sda", "nvme0n1"}
    assert "disk_read_bytes_per_second" not in keys(first)
    assert value(first, "disk_read_time_seconds", device="sda") == 0.5
    # 2 s later: +100 reads (2000 sectors, 300 ms), +50 writes (1000 sectors, 200 ms),
    # +500 ms busy, +1000 ms weighted.
    fake_root.write(
        "proc/diskstats",
        diskstats_line("sda", 1100, 0, 22000, 800, 2050, 0, 41000, 1700, 0, 2500, 3500),
    )
    r = c.collect(52.0)
    assert value(r, "disk_read_bytes_per_second", device="sda") == pytest.approx(512_000)
    assert value(r, "disk_write_bytes_per_second", device="sda") == pytest.approx(256_000)
    assert value(r, "disk_reads_per_second", device="sda") == pytest.approx(50)
    assert value(r, "disk_writes_per_second", device="sda") == pytest.approx(25)
    assert value(r, "disk_await_seconds", device="sda") == pytest.approx(0.5 / 150)
    assert value(r, "disk_busy_percent", device="sda") == pytest.approx(25.0)
    assert value(r, "disk_queue_length", device="sda") == pytest.approx(0.5)
    assert "nvme0n1" not in {dict(lb)["device"] for lb in values(r, "disk_read_bytes")}


def test_32_bit_millisecond_counters_that_wrap_still_give_busy_percent(
    fake_root: FakeRoot,
) -> None:
    near_top = 2**32 - 500
    fake_root.write("proc/diskstats", diskstats_line("sda", 1, 0, 8, 1, 1, 0, 8, 1, 0, near_top, 1))
    c = DiskIOCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    c.collect(0.0)
    fake_root.write("proc/diskstats", diskstats_line("sda", 1, 0, 8, 1, 1, 0, 8, 1, 0, 500, 1))
    r = c.collect(2.0)
    assert value(r, "disk_busy_percent", device="sda") == pytest.approx(50.0)  # 1000 ms of 2 s


def device_of(path: Path) -> str | None:
    """The whole-disk name in /proc/diskstats that stores ``path``, if the kernel shows one."""
    st_dev = path.stat().st_dev
    sys_dev = Path(f"/sys/dev/block/{os.major(st_dev)}:{os.minor(st_dev)}")
    if sys_dev.exists():
        real = sys_dev.resolve()
    else:  # btrfs and others use an anonymous st_dev: go through the mount's source device
        mounts = procfs.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        inside = [m for m in mounts if str(path).startswith(m.mountpoint.rstrip("/") + "/")]
        if not inside or not inside[-1].source.startswith("/dev/"):
            return None
        real = Path("/sys/class/block") / Path(os.path.realpath(inside[-1].source)).name
        if not real.exists():
            return None
        real = real.resolve()
    if (real / "partition").exists():
        real = real.parent
    return real.name


def disk_backed_dir(tmp_path: Path) -> tuple[Path, str | None]:
    """A directory to write in, and the disk under it when the kernel lets us tell which.

    In a container the root is an overlay whose backing disk is not named anywhere inside;
    the disk is still in /proc/diskstats, so the test then checks the sum over all disks.
    """
    for candidate in (tmp_path, Path.cwd(), Path.home()):
        name = device_of(candidate)
        if name is not None:
            return candidate, name
    return tmp_path, None


def written(reading: Reading, device: str | None) -> float:
    if device is not None:
        return value(reading, "disk_written_bytes", device=device)
    return sum(values(reading, "disk_written_bytes").values())


def test_an_fsynced_write_raises_the_backing_disks_write_bytes(tmp_path: Path) -> None:
    where, device = disk_backed_dir(tmp_path)
    c = DiskIOCollector()
    before = c.collect(time.monotonic())
    disks = {dict(lb)["device"] for lb in values(before, "disk_written_bytes")}
    assert disks, "no disk in /proc/diskstats"
    if device is not None:
        assert device in disks
    size = 16 * 1024 * 1024
    with tempfile.TemporaryDirectory(dir=where) as d:
        fd = os.open(os.path.join(d, "blob"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(fd, os.urandom(size))
            os.fsync(fd)
        finally:
            os.close(fd)
        after = c.collect(time.monotonic())
    assert written(after, device) - written(before, device) >= size
    if device is not None:
        assert value(after, "disk_write_bytes_per_second", device=device) > 0
        assert value(after, "disk_writes_per_second", device=device) > 0
    else:
        assert max(values(after, "disk_write_bytes_per_second").values()) > 0


def test_portable_path_reports_the_same_disks_and_root() -> None:
    io = DiskIOCollector(use_procfs=False).collect(time.monotonic())
    fast = DiskIOCollector().collect(time.monotonic())
    portable_disks = {dict(lb)["device"] for lb in values(io, "disk_read_bytes")}
    assert {dict(lb)["device"] for lb in values(fast, "disk_read_bytes")} <= portable_disks
    usage = DiskUsageCollector(use_procfs=False).collect(time.monotonic())
    st = os.statvfs("/")
    assert value(usage, "filesystem_size_bytes", mountpoint="/") == st.f_blocks * st.f_frsize


def test_a_hung_network_mount_is_an_error_and_never_blocks_the_others(
    fake_root: FakeRoot,
) -> None:
    """A dead NFS server cannot be staged here; statvfs that blocks stands in for it."""
    mountinfo = (fake_root.proc / "self/mountinfo").read_text()
    fake_root.write(
        "proc/self/mountinfo", mountinfo + "40 27 0:60 / /mnt/nfs rw - nfs4 server:/export rw\n"
    )
    released = threading.Event()
    calls: list[str] = []
    plain = FakeStatvfs()

    def statvfs(path: str) -> os.statvfs_result:
        calls.append(path)
        if path == "/mnt/nfs":
            released.wait(timeout=30)
        return plain(path)

    c = DiskUsageCollector(proc_root=str(fake_root.proc), statvfs=statvfs, network_timeout=0.2)
    try:
        r = c.collect(1.0)
        assert len(values(r, "filesystem_size_bytes")) == 2  # "/" and "/srv/my data"
        assert len(r.errors) == 1 and "/mnt/nfs" in r.errors[0] and "blocked" in r.errors[0]
        started = time.monotonic()
        r = c.collect(2.0)  # still hung: not asked again, no wait this time
        assert time.monotonic() - started < 0.2
        assert calls.count("/mnt/nfs") == 1 and len(r.errors) == 1
    finally:
        released.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the blocked call returns once the server is back
        r = c.collect(3.0)
        if not r.errors:
            break
        time.sleep(0.02)
    assert value(r, "filesystem_size_bytes", mountpoint="/mnt/nfs") == 1000 * 4096
