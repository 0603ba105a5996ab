"""Socket counts by state over netlink ``sock_diag`` (what ``ss`` uses), Linux only.

Reading /proc/net/tcp* walks the kernel's socket hash tables and formats text for every socket
(~5 ms a file here); a SOCK_DIAG_BY_FAMILY dump returns compact binary records instead. For
counting we only need the state byte of each ``inet_diag_msg``.

Layouts (linux/netlink.h, linux/inet_diag.h, native byte order):

* ``nlmsghdr``: u32 len, u16 type, u16 flags, u32 seq, u32 pid (16 bytes)
* ``inet_diag_req_v2``: u8 family, u8 protocol, u8 ext, u8 pad, u32 states, then an
  ``inet_diag_sockid`` (48 bytes, zero = match everything)
* ``inet_diag_req`` (v1, for TCPDIAG_GETSOCK): u8 family, u8 src_len, u8 dst_len, u8 ext, an
  ``inet_diag_sockid``, u32 states, u32 dbs
* ``inet_diag_msg``: u8 family, u8 state, u8 timer, u8 retrans, ... (state is byte 1)
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NETLINK_SOCK_DIAG = 4
TCPDIAG_GETSOCK = 18  # the original inet_diag request: one dump covers IPv4 and IPv6
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH

_NLMSGHDR = struct.Struct("=IHHII")
_REQ_V2 = struct.Struct("=BBBBI48x")
_REQ_V1 = struct.Struct("=BBBB48xII")  # family, src_len, dst_len, ext, id, states, dbs
_ERRNO = struct.Struct("=i")

#: Kernel TCP state numbers (include/net/tcp_states.h) -> catalog state names.
#: NEW_SYN_RECV (12) is a half-open connection, reported as syn_recv like ss and /proc do.
TCP_STATE_NAMES: dict[int, str] = {
    1: "established",
    2: "syn_sent",
    3: "syn_recv",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    10: "listen",
    11: "closing",
    12: "syn_recv",
}
#: Every real TCP state (1..12). Bit 13 (BOUND_INACTIVE, kernels >= 6.8) is left out: it asks
#: for sockets that are only bound, which neither ss -a nor /proc/net/tcp list.
TCP_ALL_STATES = sum(1 << s for s in TCP_STATE_NAMES)
ALL_STATES = 0xFFFFFFFF


def build_request(family: int, protocol: int, states: int, seq: int = 1) -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request (inet_diag_req_v2) for one family and protocol."""
    body = _REQ_V2.pack(family, protocol, 0, 0, states)
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def build_tcp_request(states: int, seq: int = 1) -> bytes:
    """A TCPDIAG_GETSOCK dump request (inet_diag_req v1).

    The kernel answers it for every address family in a single walk of the TCP hash tables,
    where SOCK_DIAG_BY_FAMILY needs one walk per family. The walk of the established-connection
    table (sized by RAM, not by the number of sockets) is most of a dump's cost, so this halves it.
    """
    body = _REQ_V1.pack(socket.AF_INET, 0, 0, 0, states, 0)
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), TCPDIAG_GETSOCK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def iter_states(buf: bytes) -> Iterator[int | None]:
    """The state byte of each diag record in one received buffer; None marks NLMSG_DONE.

    Raises OSError with the kernel's errno for an NLMSG_ERROR, ValueError for a malformed buffer.
    """
    offset = 0
    end = len(buf)
    hsize = _NLMSGHDR.size
    while offset + hsize <= end:
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(buf, offset)
        if length < hsize or offset + length > end:
            raise ValueError(f"malformed netlink message at offset {offset} (length {length})")
        if mtype == NLMSG_DONE:
            yield None
            return
        if mtype == NLMSG_ERROR:
            (err,) = _ERRNO.unpack_from(buf, offset + hsize)
            if err != 0:
                raise OSError(-err, f"sock_diag: {os.strerror(-err)}")
        elif mtype in (SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK):
            yield buf[offset + hsize + 1]
        offset += (length + 3) & ~3
    if offset < end:
        raise ValueError(f"malformed netlink buffer: {end - offset} stray bytes at {offset}")


def count_states(sock: socket.socket, family: int, protocol: int, states: int) -> dict[int, int]:
    """Dump one (family, protocol) over an open NETLINK_SOCK_DIAG socket: state -> count."""
    return dump_counts(sock, build_request(family, protocol, states))


def dump_counts(sock: socket.socket, request: bytes) -> dict[int, int]:
    """Send one dump request and count the records of the answer by state."""
    sock.send(request)
    counts: dict[int, int] = {}
    for _ in range(1_000_000):  # bounded: a dump ends with NLMSG_DONE long before this
        buf = sock.recv(1 << 16)
        if not buf:
            raise OSError("sock_diag: netlink socket closed mid-dump")
        for state in iter_states(buf):
            if state is None:
                return counts
            counts[state] = counts.get(state, 0) + 1
    raise OSError("sock_diag: dump did not end")


def open_socket(timeout: float = 2.0) -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG
    )
    sock.settimeout(timeout)
    return sock


def tcp_counts(sock: socket.socket, *, single_dump: bool = True) -> dict[str, int]:
    """TCP sockets (IPv4 + IPv6) by catalog state name.

    ``single_dump`` uses one TCPDIAG_GETSOCK dump for both families; otherwise one
    SOCK_DIAG_BY_FAMILY dump per family.
    """
    if single_dump:
        by_state = dump_counts(sock, build_tcp_request(TCP_ALL_STATES))
    else:
        by_state = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for state, n in count_states(sock, family, socket.IPPROTO_TCP, TCP_ALL_STATES).items():
                by_state[state] = by_state.get(state, 0) + n
    tcp: dict[str, int] = {}
    for state, n in by_state.items():
        name = TCP_STATE_NAMES.get(state)
        if name is not None:
            tcp[name] = tcp.get(name, 0) + n
    return tcp


def udp_count(sock: socket.socket) -> int:
    """UDP sockets (IPv4 + IPv6); needs the udp_diag kernel module (ENOENT without it)."""
    return sum(
        sum(count_states(sock, family, socket.IPPROTO_UDP, ALL_STATES).values())
        for family in (socket.AF_INET, socket.AF_INET6)
    )
