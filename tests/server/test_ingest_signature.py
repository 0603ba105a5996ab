"""The series signature that lets ingest skip re-validating a known series table (and lets the
alert observer reuse what it derived from it): equal exactly when host and table are equal."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from wire import batch, now_ms, request

from hostpulse.protocol import HostBatch, Label
from hostpulse.server.ingest import IngestError, IngestLimits, IngestService
from hostpulse.server.ingest.validate import series_signature, table_digest, tail_sizes
from hostpulse.store import open_store
from hostpulse.store.prepare import tail_size

CPU = ("cpu_busy_percent", ())
MEM = ("memory_usage_percent", ())


def _two() -> HostBatch:
    return batch("h1", [(1000, {CPU: 1.0, MEM: 2.0}), (6000, {CPU: 3.0, MEM: 4.0})])


def test_snapshots_do_not_change_the_signature() -> None:
    one = batch("h1", [(1000, {CPU: 1.0, MEM: 2.0})])
    assert series_signature(one) == series_signature(_two())
    empty = _two()
    empty.ClearField("snapshots")
    assert series_signature(empty) == series_signature(_two())


def test_host_table_and_unsupported_list_each_change_it() -> None:
    base = series_signature(_two())
    swapped = batch("h1", [(1000, {MEM: 2.0, CPU: 1.0})])
    other_host = batch("h2", [(1000, {CPU: 1.0, MEM: 2.0})])
    relabelled = _two()
    relabelled.host.labels.append(Label(name="rack", value="b"))
    unsupported = _two()
    unsupported.unsupported.append("cpu_frequency_hertz")
    more = _two()
    more.unsupported.extend(["cpu_frequency_hertz", "x"])
    signatures = [base] + [
        series_signature(b) for b in (swapped, other_host, relabelled, unsupported, more)
    ]
    assert len(set(signatures)) == len(signatures)
    no_snapshots = _two()
    no_snapshots.ClearField("snapshots")
    no_snapshots.unsupported.append("cpu_frequency_hertz")
    assert series_signature(no_snapshots) == series_signature(unsupported)


def test_it_is_the_digest_of_the_batch_without_its_snapshots() -> None:
    for b in (_two(), batch("h3", [])):
        b.unsupported.extend(["cpu_frequency_hertz", "disk_io_time_seconds"])
        head = HostBatch()
        head.CopyFrom(b)
        head.ClearField("snapshots")
        expected = hashlib.blake2b(head.SerializeToString(), digest_size=16).digest()
        assert series_signature(b) == expected


def test_the_table_digest_is_shared_by_hosts_with_the_same_series_table() -> None:
    a, b = _two(), batch("h2", [(1000, {CPU: 9.0, MEM: 9.0})])
    b.host.hostname = "elsewhere"
    b.unsupported.append("cpu_frequency_hertz")
    assert table_digest(a) is not None and table_digest(a) == table_digest(b)
    swapped = batch("h1", [(1000, {MEM: 2.0, CPU: 1.0})])
    labelled = batch(
        "h1", [(1000, {("network_receive_bytes_per_second", (("interface", "a"),)): 1})]
    )
    other = batch("h1", [(1000, {("network_receive_bytes_per_second", (("interface", "b"),)): 1})])
    digests = {table_digest(x) for x in (a, swapped, labelled, other, batch("h1", []))}
    assert len(digests) == 5


def test_a_checked_table_is_not_a_checked_host(tmp_path: Path) -> None:
    """A series table checked for one host is not checked again for the next host sending it,
    but each host's own fields still are, and a refused table is refused for every host."""
    service = IngestService(open_store(tmp_path / "data"), IngestLimits(), time.time)
    t = now_ms()
    service.check(request(batch("h1", [(t, {CPU: 1.0, MEM: 2.0})])), t)
    assert len(service.checker._tables) == 1
    long_name = batch("h2", [(t, {CPU: 1.0, MEM: 2.0})])
    long_name.host.hostname = "x" * 300
    with pytest.raises(IngestError, match="hostname"):
        service.check(request(long_name), t)
    service.check(request(batch("h3", [(t, {CPU: 1.0, MEM: 2.0})])), t)
    assert len(service.checker._tables) == 1
    unknown = ("no_such_metric", ())
    for host in ("h4", "h5"):
        with pytest.raises(IngestError, match=f"host '{host}'.*unknown metric"):
            service.check(request(batch(host, [(t, {CPU: 1.0, unknown: 2.0})])), t)
    assert len(service.checker._tables) == 1


def test_the_checks_serialized_batch_gives_the_same_digests() -> None:
    """The check hands each batch's serialization and field sizes on; the signature and the
    table digest made from them are the ones made from the message alone."""
    for b in (_two(), batch("h3", []), batch("h4", [(1000, {CPU: 1.0})] * 3)):
        b.unsupported.extend(["cpu_frequency_hertz", "x" * 200])
        data, sizes = b.SerializeToString(), tail_sizes(b)
        assert sum(sizes) == tail_size(b)
        assert series_signature(b, data, sizes) == series_signature(b)
        assert table_digest(b, data, sizes) == table_digest(b)


def test_the_checks_table_digest_is_the_one_the_store_registers_by() -> None:
    """A batch new to the check hands its series-table digest to ``prepare``: the same as
    the store computes itself, so a host is registered under the same table either way."""
    from hostpulse.server.ingest.checker import Checker
    from hostpulse.store.prepare import prepare

    t = now_ms()
    req = request(batch("h1", [(t, {CPU: 1.0, MEM: 2.0})]), batch("h2", [(t, {CPU: 3.0})]))
    req.batches[1].unsupported.append("cpu_frequency_hertz")
    checker = Checker(IngestLimits())
    checked = checker.check(req, t)
    assert checked.tables is not None and None not in checked.tables
    prep = prepare(
        req, checked.serialized, checked.arrays, checked.signatures, checked.tails, checked.tables
    )
    own = prepare(req)
    assert [pb.table_digest for pb in prep.batches] == [pb.table_digest for pb in own.batches]
    checker.remember(checked.fresh)  # known now: no digest made, the store hashes when asked
    again = checker.check(req, t)
    assert again.tables == [None, None]
    later = prepare(
        req, again.serialized, again.arrays, again.signatures, again.tails, again.tables
    )
    assert [pb.table_digest for pb in later.batches] == [pb.table_digest for pb in own.batches]


def test_a_request_read_in_another_process_is_prepared_as_the_message_alone(
    tmp_path: Path,
) -> None:
    """An acceptor's (or worker's) checked request, taken by the server process: its batches'
    bytes, signatures and new tables' digests go to ``prepare`` instead of being made again,
    and give the same WAL payload and table digests as ``prepare`` of the message alone, and
    the batch digests of the server process's own path (the check's signatures), for a
    request new to the checker and again once it is known."""
    from hostpulse.protocol import codec
    from hostpulse.server.ingest import worker
    from hostpulse.server.ingest.checker import Checker
    from hostpulse.store.prepare import prepare

    t = now_ms()
    req = request(
        batch("h1", [(t, {CPU: 1.0, MEM: 2.0}), (t + 5000, {CPU: 1.5, MEM: 2.5})]),
        batch("h2", [(t, {CPU: 3.0})]),
    )
    req.batches[1].unsupported.append("cpu_frequency_hertz")
    req.batches[0].host.labels.add(name="rack", value="r1")
    own = prepare(req)
    remote = Checker(IngestLimits())  # the other process's own caches
    service = IngestService(open_store(tmp_path / "data"), IngestLimits(), time.time)
    body = codec.encode(req)
    for round_ in ("new", "known"):
        answer = worker.answer(remote, False, (1, t, "application/x-protobuf", "gzip", body))
        assert answer[1] == worker.CHECKED, answer
        assert answer[3] == req.SerializeToString(), round_  # made from the batches' bytes
        checked, prep = service._from_answer(answer)
        assert prep is None and len(checked.serialized) == 2, round_
        assert checked.serialized == [b.SerializeToString() for b in req.batches]
        ours = prepare(
            checked.request,
            checked.serialized,
            checked.arrays,
            checked.signatures,
            checked.tails,
            checked.tables,
        )
        assert ours.payload == own.payload, round_
        # the batch digest is the check's signature, as on the server process's own path
        assert [pb.digest for pb in ours.batches] == checked.signatures, round_
        assert checked.signatures == Checker(IngestLimits()).check(req, t).signatures
        assert [pb.table_digest for pb in ours.batches] == [
            pb.table_digest for pb in own.batches
        ], round_
        assert (checked.tables is not None and None not in checked.tables) == (round_ == "new")


def test_a_field_of_the_request_that_is_not_a_batch_is_not_passed_on(tmp_path: Path) -> None:
    """A request with a field the protocol does not define (a newer agent's, say) is checked
    and stored as its batches: the acceptor passes on the batches alone, so the server process
    still takes their bytes as they are (not a request it must serialize again)."""
    from hostpulse.server.ingest import worker
    from hostpulse.server.ingest.checker import Checker

    t = now_ms()
    req = request(batch("h1", [(t, {CPU: 1.0})]))
    body = req.SerializeToString() + b"\x10\x07"  # field 2, a varint: unknown to IngestRequest
    answer = worker.answer(
        Checker(IngestLimits()), False, (1, t, "application/x-protobuf", None, body)
    )
    assert answer[1] == worker.CHECKED and answer[3] == req.SerializeToString()
    service = IngestService(open_store(tmp_path / "data"), IngestLimits(), time.time)
    checked, _ = service._from_answer(answer)
    assert checked.serialized == [req.batches[0].SerializeToString()]


def test_batch_bytes_takes_only_a_request_of_batches() -> None:
    from hostpulse.server.ingest.wire import batch_bytes

    req = request(batch("h1", [(1000, {CPU: 1.0})]), batch("h2", []))
    data = req.SerializeToString()
    assert batch_bytes(data) == [b.SerializeToString() for b in req.batches]
    assert batch_bytes(b"") == []
    assert batch_bytes(data + b"\x10\x01") is None  # another field (2, a varint)
    assert batch_bytes(data[:-1]) is None  # the last batch cut short
    assert batch_bytes(b"\x0a\xff") is None  # a length that does not end
