"""sock_diag request layout and reply parsing, over a real socket pair standing in for the
kernel's netlink socket (the reply bytes are built by hand, as the kernel lays them out)."""

from __future__ import annotations

import errno
import socket
import struct
from contextlib import ExitStack

import pytest

from hostpulse.agent.collectors import netlink

HDR = struct.Struct("=IHHII")


def message(mtype: int, payload: bytes) -> bytes:
    length = HDR.size + len(payload)
    padding = b"\0" * ((4 - length % 4) % 4)
    return HDR.pack(length, mtype, 2, 1, 0) + payload + padding


def diag_record(state: int, family: int = socket.AF_INET, mtype: int = 20) -> bytes:
    # inet_diag_msg: family, state, timer, retrans, 48-byte sockid, 5 x u32 (72 bytes)
    return message(mtype, struct.pack("=BBBB48x5I", family, state, 0, 0, 0, 0, 0, 1000, 4242))


def done() -> bytes:
    return message(netlink.NLMSG_DONE, struct.pack("=i", 0))


def test_v2_request_layout() -> None:
    req = netlink.build_request(socket.AF_INET6, socket.IPPROTO_UDP, 0xFFFFFFFF)
    length, mtype, flags, _seq, pid = HDR.unpack_from(req)
    assert (length, mtype, pid) == (len(req), 20, 0) and len(req) == 16 + 56
    assert flags == netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP
    family, proto, ext, _pad, states = struct.unpack_from("=BBBBI", req, 16)
    assert (family, proto, ext, states) == (socket.AF_INET6, socket.IPPROTO_UDP, 0, 0xFFFFFFFF)
    assert req[24:] == b"\0" * 48  # a zero sockid matches every socket


def test_tcp_request_asks_for_every_real_state() -> None:
    req = netlink.build_tcp_request(netlink.TCP_ALL_STATES)
    length, mtype, _flags, _seq, _pid = HDR.unpack_from(req)
    assert (length, mtype) == (len(req), netlink.TCPDIAG_GETSOCK) and len(req) == 16 + 60
    (states,) = struct.unpack_from("=I", req, 16 + 52)
    assert states == sum(1 << s for s in range(1, 13))


def test_states_are_read_from_each_record_until_done() -> None:
    buf = diag_record(1) + diag_record(10, socket.AF_INET6) + diag_record(6, mtype=18) + done()
    assert list(netlink.iter_states(buf)) == [1, 10, 6, None]


def test_an_error_message_raises_with_the_kernel_errno() -> None:
    err = message(netlink.NLMSG_ERROR, struct.pack("=i", -errno.EACCES) + b"\0" * 16)
    with pytest.raises(OSError) as exc:
        list(netlink.iter_states(err))
    assert exc.value.errno == errno.EACCES


def test_a_truncated_buffer_is_an_error_not_a_wrong_count() -> None:
    with pytest.raises(ValueError, match="malformed"):
        list(netlink.iter_states(diag_record(1)[:-8]))  # claims more bytes than there are
    with pytest.raises(ValueError, match="malformed"):
        list(netlink.iter_states(diag_record(1) + b"\0" * 8))  # a partial header after it


def test_a_dump_spread_over_several_datagrams_is_counted_whole() -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        kernel.send(diag_record(1) + diag_record(1) + diag_record(10))
        kernel.send(diag_record(6) + diag_record(12))
        kernel.send(done())
        counts = netlink.count_states(ours, socket.AF_INET, socket.IPPROTO_TCP, 0xFFF)
        request = kernel.recv(1024)
    assert counts == {1: 2, 10: 1, 6: 1, 12: 1}
    assert request == netlink.build_request(socket.AF_INET, socket.IPPROTO_TCP, 0xFFF)


def test_tcp_counts_name_the_states_and_fold_new_syn_recv_into_syn_recv() -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        kernel.send(
            diag_record(3, mtype=18) + diag_record(12, mtype=18) + diag_record(10, mtype=18)
        )
        kernel.send(done())
        assert netlink.tcp_counts(ours) == {"syn_recv": 2, "listen": 1}


@pytest.mark.parametrize("single_dump", [True, False], ids=["tcpdiag", "by-family"])
def test_the_real_kernel_answers_a_dump(single_dump: bool) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.listen()
        with netlink.open_socket() as sock:
            baseline = netlink.tcp_counts(sock, single_dump=single_dump).get("listen", 0)
    with ExitStack() as stack:
        for _ in range(baseline + 3):
            listener = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        with netlink.open_socket() as sock:
            counts = netlink.tcp_counts(sock, single_dump=single_dump)
    assert counts.get("listen", 0) >= baseline + 3
