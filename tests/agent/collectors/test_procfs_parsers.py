"""The /proc parsers on fixture files (tests/agent/fixtures/linux)."""

from __future__ import annotations

from collector_helpers import FIXTURES

from hostpulse.agent.collectors import procfs

PROC = FIXTURES / "proc"


def test_proc_stat_gives_ticks_per_mode_for_the_total_and_each_core() -> None:
    st = procfs.parse_proc_stat((PROC / "stat").read_text())
    assert st.cpus["total"] == (2000, 20, 1000, 16000, 200, 40, 60, 80)
    assert set(st.cpus) == {"total", "0", "1"}
    assert (st.ctxt, st.intr, st.softirq, st.btime) == (987654, 123456, 55555, 1700000000)


def test_proc_stat_of_an_old_kernel_without_steal_pads_with_zero() -> None:
    st = procfs.parse_proc_stat("cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\n")
    assert st.cpus["0"] == (1, 2, 3, 4, 5, 6, 7, 0)
    assert st.ctxt is None


def test_meminfo_converts_kilobytes_to_bytes() -> None:
    mi = procfs.parse_meminfo((PROC / "meminfo").read_text())
    assert mi["MemTotal"] == 8_000_000 * 1024
    assert mi["HugePages_Total"] == 0  # a count, not kB


def test_diskstats_in_bytes_from_512_byte_sectors() -> None:
    disks = {d.name: d for d in procfs.parse_diskstats((PROC / "diskstats").read_text())}
    sda = disks["sda"]
    assert (sda.major, sda.minor) == (8, 0)
    assert sda.read_bytes == 20000 * 512 and sda.written_bytes == 40000 * 512
    assert (sda.reads, sda.writes, sda.read_ms, sda.write_ms) == (1000, 2000, 500, 1500)
    assert (sda.in_progress, sda.io_ms, sda.weighted_ms) == (1, 2000, 2500)
    assert disks["nvme0n1"].written_bytes == 1600 * 512  # a 14-field line from an old kernel


def test_net_dev_per_interface() -> None:
    dev = procfs.parse_net_dev((PROC / "net" / "dev").read_text())
    eth = dev["eth0"]
    assert (eth.rx_bytes, eth.rx_packets, eth.rx_errors, eth.rx_drops) == (5000000, 4000, 1, 2)
    assert (eth.tx_bytes, eth.tx_packets, eth.tx_errors, eth.tx_drops) == (1000000, 3000, 3, 4)
    assert set(dev) == {"lo", "eth0"}


def test_mountinfo_unescapes_paths_and_reads_type_and_source() -> None:
    mounts = {
        m.mountpoint: m for m in procfs.parse_mountinfo((PROC / "self/mountinfo").read_text())
    }
    data = mounts["/srv/my data"]
    assert (data.dev, data.root, data.fstype, data.source) == ("8:2", "/", "xfs", "/dev/sda2")
    assert mounts["/mnt/bind"].root == "/var/lib/x"


def test_pid_stat_with_spaces_and_parentheses_in_the_name() -> None:
    st = procfs.parse_pid_stat((PROC / "42" / "stat").read_bytes())
    assert st.name == "my (weird) proc"
    assert (st.state, st.cpu_ticks, st.threads, st.start_ticks, st.rss_pages) == (
        "R",
        4000,
        4,
        50000,
        100000,
    )


def test_a_real_pid_stat_parses() -> None:
    with open("/proc/self/stat", "rb") as f:
        st = procfs.parse_pid_stat(f.read())
    with open("/proc/self/comm") as f:
        assert st.name == f.read().strip()
    assert st.threads >= 1 and st.rss_pages > 0


def test_cpuinfo_model_and_frequencies() -> None:
    text = (PROC / "cpuinfo").read_text()
    assert procfs.cpuinfo_field(text, "model name") == "Intel(R) Xeon(R) Test CPU @ 2.00GHz"
    assert procfs.cpuinfo_mhz(text) == [2000.0, 2200.0]


def test_a_malformed_line_loses_only_itself() -> None:
    good = (PROC / "diskstats").read_text()
    bad = "   8      16 sdb 1 0 oops 0 0 0 0 0 0 0 0 0 0 0 0\n"
    names = [d.name for d in procfs.parse_diskstats(bad + good)]
    assert names == ["sda", "sda1", "loop0", "nvme0n1"]
    dev = (PROC / "net/dev").read_text() + "  eth1: 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16\n"
    assert set(procfs.parse_net_dev(dev)) == {"lo", "eth0"}


def test_pick_keyvalues_finds_only_whole_names() -> None:
    text = "pswpin_extra 7\nnr_free 1\npswpin 12\npswpout 34"
    assert procfs.pick_keyvalues(text, ("pswpin", "pswpout", "absent")) == {
        "pswpin": 12,
        "pswpout": 34,
    }
    assert procfs.pick_keyvalues("pswpin 5\n", ("pswpin",)) == {"pswpin": 5}
