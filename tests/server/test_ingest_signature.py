"""The series signature that lets ingest skip re-validating a known series table (and lets the
alert observer reuse what it derived from it): equal exactly when host and table are equal."""

from __future__ import annotations

import hashlib

from wire import batch

from hostpulse.protocol import HostBatch, Label
from hostpulse.server.ingest.validate import series_signature

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
