"""TCP states and UDP sockets against sockets the test opens on 127.0.0.1 and ::1.

The machine is shared, so counts are checked as lower bounds: the test opens more sockets of
each kind than the machine had before, so a count that missed ours could not reach the bound.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from collector_helpers import value

from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.collectors.connections import ConnectionsCollector


def counts(r: Reading) -> tuple[float, float, float]:
    return (
        value(r, "netstat_tcp_connections", state="listen"),
        value(r, "netstat_tcp_connections", state="established"),
        value(r, "netstat_udp_sockets"),
    )


@pytest.fixture
def sockets() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def address(i: int) -> tuple[socket.AddressFamily, str]:
    """Every other socket on ::1 when the machine has IPv6, so both families are counted."""
    if i % 2 and ipv6_loopback():
        return socket.AF_INET6, "::1"
    return socket.AF_INET, "127.0.0.1"


def open_sockets(stack: ExitStack, listeners: int, pairs: int, udp: int) -> list[socket.socket]:
    """Listeners and UDP sockets alternate IPv4/IPv6; returns the client side of each pair."""
    clients = []
    for i in range(max(listeners, 1)):
        family, host = address(i)
        srv = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        srv.bind((host, 0))
        srv.listen(pairs + 1)
        if i == 0:
            for _ in range(pairs):
                client = stack.enter_context(socket.create_connection(srv.getsockname()[:2]))
                conn, _ = srv.accept()
                stack.enter_context(conn)
                clients.append(client)
    for i in range(udp):
        family, host = address(i)
        u = stack.enter_context(socket.socket(family, socket.SOCK_DGRAM))
        u.bind((host, 0))
    return clients


@pytest.mark.parametrize("use_netlink", [True, False], ids=["netlink", "psutil"])
def test_counts_see_our_listeners_established_pairs_and_udp_sockets(
    sockets: ExitStack, use_netlink: bool
) -> None:
    c = ConnectionsCollector(use_netlink=use_netlink)
    listen0, est0, udp0 = counts(c.collect(time.monotonic()))
    n_listen, n_pairs, n_udp = int(listen0) + 5, int(est0) // 2 + 5, int(udp0) + 5
    clients = open_sockets(sockets, n_listen, n_pairs, n_udp)
    r = c.collect(time.monotonic())
    listen, est, udp = counts(r)
    assert listen >= n_listen
    assert est >= 2 * n_pairs  # both ends of each pair
    assert udp >= n_udp
    assert r.errors == []
    # The client closes first: after the server side closes too, it waits in TIME_WAIT.
    for client in clients:
        client.close()
    sockets.close()
    deadline = time.monotonic() + 5.0  # the FIN exchange finishes asynchronously
    time_wait = 0.0
    while time.monotonic() < deadline:
        time_wait = value(c.collect(time.monotonic()), "netstat_tcp_connections", state="time_wait")
        if time_wait >= n_pairs:
            break
        time.sleep(0.05)
    assert time_wait >= n_pairs


def test_when_netlink_is_refused_it_falls_back_to_psutil_and_keeps_going(
    sockets: ExitStack,
) -> None:
    def refuse() -> socket.socket:
        raise PermissionError(1, "Operation not permitted")

    c = ConnectionsCollector(use_netlink=True, open_netlink=refuse)
    listen0, _, _ = counts(ConnectionsCollector().collect(time.monotonic()))
    open_sockets(sockets, int(listen0) + 3, 0, 0)
    r = c.collect(time.monotonic())
    assert value(r, "netstat_tcp_connections", state="listen") >= listen0 + 3
    assert len(r.errors) == 1 and "falling back to psutil" in r.errors[0]
    assert c.collect(time.monotonic()).errors == []  # decided once, not retried every time
