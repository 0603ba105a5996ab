from __future__ import annotations

import socket
import threading
import time

import pytest
from collector_helpers import FakeRoot, keys, value, values

from hostpulse.agent.collectors.network import NetworkCollector

HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
)


def net_dev(**interfaces: tuple[int, ...]) -> str:
    lines = []
    for name, (rb, rp, re, rd, tb, tp, te, td) in interfaces.items():
        lines.append(f"  {name}: {rb} {rp} {re} {rd} 0 0 0 0 {tb} {tp} {te} {td} 0 0 0 0")
    return HEADER + "\n".join(lines) + "\n"


def send_over_loopback(nbytes: int) -> None:
    """Push ``nbytes`` through a TCP connection on 127.0.0.1 and wait until all arrived."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        received = 0

        def receive() -> None:
            nonlocal received
            conn, _ = server.accept()
            with conn:
                while received < nbytes:
                    chunk = conn.recv(1 << 16)
                    if not chunk:
                        break
                    received += len(chunk)

        t = threading.Thread(target=receive)
        t.start()
        with socket.create_connection(server.getsockname(), timeout=10) as client:
            client.sendall(b"x" * nbytes)
        t.join(timeout=10)
        assert received == nbytes


@pytest.mark.parametrize("use_procfs", [True, False], ids=["procfs", "psutil"])
def test_loopback_traffic_raises_lo_bytes_and_packets(use_procfs: bool) -> None:
    c = NetworkCollector(use_procfs=use_procfs)
    before = c.collect(time.monotonic())
    nbytes = 4 * 1024 * 1024
    send_over_loopback(nbytes)
    after = c.collect(time.monotonic())
    for key in ("network_receive_bytes", "network_transmit_bytes"):
        assert value(after, key, interface="lo") - value(before, key, interface="lo") >= nbytes
    assert value(after, "network_receive_packets", interface="lo") > value(
        before, "network_receive_packets", interface="lo"
    )
    assert value(after, "network_receive_bytes_per_second", interface="lo") > 0
    assert value(after, "network_transmit_packets_per_second", interface="lo") > 0


def test_fixture_rates_speed_and_utilisation(fake_root: FakeRoot) -> None:
    c = NetworkCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    first = c.collect(0.0)
    assert value(first, "network_receive_errors", interface="eth0") == 1
    assert value(first, "network_speed_bytes_per_second", interface="eth0") == 125_000_000
    assert "network_utilization_percent" not in keys(first)
    assert "network_speed_bytes_per_second" not in first.unsupported
    fake_root.write(
        "proc/net/dev",
        net_dev(
            lo=(10000, 100, 0, 0, 10000, 100, 0, 0),
            eth0=(5000000 + 250_000_000, 4000 + 2000, 1, 12, 1000000 + 50_000_000, 3300, 3, 4),
        ),
    )
    r = c.collect(10.0)
    assert value(r, "network_receive_bytes_per_second", interface="eth0") == 25_000_000
    assert value(r, "network_transmit_bytes_per_second", interface="eth0") == 5_000_000
    assert value(r, "network_receive_packets_per_second", interface="eth0") == 200
    assert value(r, "network_receive_drops_per_second", interface="eth0") == 1
    assert value(r, "network_transmit_errors_per_second", interface="eth0") == 0
    assert value(r, "network_utilization_percent", interface="eth0") == pytest.approx(20.0)
    assert (("interface", "lo"),) not in values(r, "network_speed_bytes_per_second")


def test_no_link_speed_anywhere_is_unsupported_not_zero(fake_root: FakeRoot) -> None:
    (fake_root.sys / "class/net/eth0/speed").write_text("-1\n")
    r = NetworkCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys)).collect(0)
    assert {"network_speed_bytes_per_second", "network_utilization_percent"} <= r.unsupported
    assert "network_speed_bytes_per_second" not in keys(r)


def test_an_interface_that_disappears_and_returns_gets_no_bogus_rate(fake_root: FakeRoot) -> None:
    c = NetworkCollector(proc_root=str(fake_root.proc), sys_root=str(fake_root.sys))
    c.collect(0.0)
    fake_root.write("proc/net/dev", net_dev(lo=(10000, 100, 0, 0, 10000, 100, 0, 0)))
    c.collect(5.0)
    fake_root.write(
        "proc/net/dev",
        net_dev(lo=(10000, 100, 0, 0, 10000, 100, 0, 0), eth0=(10, 1, 0, 0, 10, 1, 0, 0)),
    )
    r = c.collect(10.0)
    assert value(r, "network_receive_bytes", interface="eth0") == 10
    assert (("interface", "eth0"),) not in values(r, "network_receive_bytes_per_second")
