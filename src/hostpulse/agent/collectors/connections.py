"""Sockets: TCP connections by state and the number of UDP sockets.

Linux asks the kernel over netlink sock_diag (cheap); if that fails (no AF_NETLINK, permission
denied, a kernel without inet_diag) it falls back to psutil, which reads /proc/net/* — slower but
complete. UDP without the udp_diag module is counted from /proc/net/udp{,6} lines.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable

import psutil

from hostpulse.agent.collectors import netlink
from hostpulse.agent.collectors._common import add, current_platform, platform_unsupported
from hostpulse.agent.collectors.base import Reading
from hostpulse.catalog import TCP_STATES

logger = logging.getLogger(__name__)

NAME = "connections"
_STATE_LABELS = {s: (("state", s),) for s in TCP_STATES}
_KEYS = ("netstat_tcp_connections", "netstat_udp_sockets")

SocketOpener = Callable[[], socket.socket]


class ConnectionsCollector:
    name = NAME

    def __init__(
        self,
        *,
        proc_root: str = "/proc",
        use_netlink: bool | None = None,
        open_netlink: SocketOpener = netlink.open_socket,
    ) -> None:
        self._proc = proc_root
        self._netlink = sys.platform.startswith("linux") if use_netlink is None else use_netlink
        self._open_netlink = open_netlink
        self._udp_netlink = True
        self._single_dump = True
        self._platform_unsupported = platform_unsupported(NAME, current_platform())

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        counts: tuple[dict[str, int], int] | None = None
        if self._netlink:
            try:
                counts = self._read_netlink()
            except (OSError, ValueError) as exc:
                logger.warning("netlink sock_diag failed, using psutil from now on: %s", exc)
                reading.errors.append(f"connections netlink (falling back to psutil): {exc}")
                self._netlink = False
        if counts is None:
            try:
                counts = _read_psutil()
            except (OSError, psutil.Error) as exc:  # macOS needs root for other users' sockets
                reading.errors.append(f"connections: {exc}")
                reading.unsupported.update(_KEYS)
                return reading
        tcp, udp = counts
        for state in TCP_STATES:
            add(reading, "netstat_tcp_connections", tcp.get(state, 0), _STATE_LABELS[state])
        add(reading, "netstat_udp_sockets", udp)
        return reading

    def _read_netlink(self) -> tuple[dict[str, int], int]:
        with self._open_netlink() as sock:
            if self._single_dump:
                try:
                    tcp = netlink.tcp_counts(sock, single_dump=True)
                except OSError as exc:
                    logger.info("no TCPDIAG_GETSOCK (%s): one dump per address family", exc)
                    self._single_dump = False
            if not self._single_dump:
                tcp = netlink.tcp_counts(sock, single_dump=False)
            if self._udp_netlink:
                try:
                    return tcp, netlink.udp_count(sock)
                except OSError as exc:
                    logger.info("no udp_diag (%s): counting UDP sockets from /proc/net", exc)
                    self._udp_netlink = False
        return tcp, self._udp_from_proc()

    def _udp_from_proc(self) -> int:
        n = 0
        for name in ("udp", "udp6"):
            try:
                with open(f"{self._proc}/net/{name}", encoding="ascii", errors="replace") as f:
                    n += max(0, sum(1 for _ in f) - 1)  # minus the header line
            except FileNotFoundError:  # no IPv6
                continue
        return n


def _read_psutil() -> tuple[dict[str, int], int]:
    tcp: dict[str, int] = {}
    for c in psutil.net_connections(kind="tcp"):
        state = str(c.status).lower()
        tcp[state] = tcp.get(state, 0) + 1
    udp = len(psutil.net_connections(kind="udp"))
    return tcp, udp
