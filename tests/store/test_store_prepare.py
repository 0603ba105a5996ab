"""The ingest preparation reads values straight from the serialized batch, and falls back to
the parsed message for any layout it does not expect."""

from __future__ import annotations

import math
import pickle
import struct

import numpy as np
import pytest
from storekit import T0, batch, request

from hostpulse.protocol import IngestRequest
from hostpulse.store.exceptions import InvalidRequestError
from hostpulse.store.prepare import (
    batch_arrays,
    identity,
    pack,
    prepare,
    table_keys,
    tail_size,
    unpack,
)


def _values(req: IngestRequest) -> list[list[float]]:
    return [ps.values.tolist() for pb in prepare(req).batches for ps in pb.snapshots]


def test_values_and_payload_match_the_message() -> None:
    rows = [(T0 + i * 5000, [i + 0.1, 2.0**40 + i, -3.5, 1e-300, float(i)]) for i in range(5)]
    b = batch("h1", rows, processes=True)
    b.unsupported.extend(["cpu_frequency_hertz", "x" * 300])
    req = request(b)
    prep = prepare(req)
    assert prep.payload == req.SerializeToString()
    assert prep.newest_ms == rows[-1][0]
    assert _values(req) == [v for _, v in rows]
    # read in place from the serialized bytes (the fast path), not copied from the message
    assert all(not ps.values.flags.writeable for ps in prep.batches[0].snapshots)


def test_unknown_fields_fall_back_to_the_parsed_message() -> None:
    rows = [(T0, [1.0, 2.0, 3.0, 4.0, 5.0]), (T0 + 5000, [6.0, 7.0, 8.0, 9.0, 10.0])]
    req = request(batch("h1", rows))
    req.batches[0].snapshots[1].MergeFromString(b"\x78\x05")  # field 15, varint 5
    assert _values(req) == [v for _, v in rows]


def test_the_cache_key_ignores_snapshots_but_not_the_series_table() -> None:
    a = prepare(request(batch("h1", [(T0, [1, 2, 3, 4, 5])])))
    b = prepare(request(batch("h1", [(T0 + 5000, [6, 7, 8, 9, 10]), (T0, [1, 1, 1, 1, 1])])))
    c = prepare(request(batch("h1", [(T0, [1, 2, 3, 4])], [("cpu_load1", ())] * 4)))
    assert a.batches[0].digest == b.batches[0].digest != c.batches[0].digest


def test_repeated_or_out_of_range_index_is_rejected() -> None:
    req = request(batch("h1", [(T0, [1, 2, 3, 4, 5]), (T0 + 5000, [1, 2, 3, 4, 5])]))
    req.batches[0].snapshots[1].series_index[4] = 0
    with pytest.raises(InvalidRequestError, match=r"snapshots\[1\]"):
        prepare(req)
    assert np.array_equal(
        prepare(request(batch("h", [(T0, [1.0])]))).batches[0].snapshots[0].index, [0]
    )


@pytest.mark.parametrize(
    "unknown",
    [
        b"\x4a\x10" + b"\x00" * 7 + b"\x40" + b"\x00" * 7 + b"\x45",  # field 9, 16 bytes
        b"\x51" + b"\x00" * 6 + b"\xf0\x7f",  # field 10, fixed64 (+inf as bytes)
        b"\x18\x2a",  # field 3 (snapshots) with the wrong wire type: kept as unknown
        b"\x22\x01x\x49" + b"\x00" * 8,  # after a real unsupported entry
    ],
)
def test_unknown_fields_of_the_batch_never_shift_the_values(unknown: bytes) -> None:
    # issue 13 item 3: unknown fields are serialized after the known ones, so values read at
    # offsets counted from the end were garbage (+inf, NaN) while the message said 42.0
    rows = [(T0, [42.0, 1.0, 2.0, 3.0, 4.0]), (T0 + 5000, [42.0, 5.0, 6.0, 7.0, 8.0])]
    req = request(batch("h1", rows))
    req.batches[0].MergeFromString(unknown)
    parsed = IngestRequest.FromString(req.SerializeToString())
    assert _values(parsed) == [v for _, v in rows]


def test_a_crafted_unknown_field_cannot_make_the_store_read_other_bytes() -> None:
    # issue 13 item 3, the attack itself: the values' bytes hold a fake snapshot field, and an
    # unknown field of the batch (serialized last) shifts the start of the offset walk onto it;
    # the walk then ends exactly at the end and the store read NaN where validation saw 2.0
    fake = b"\x1a\x12\x1a\x10" + b"\x00\x00\x00\x40" + b"\x00\x00\xf0\x7f" + b"\x00\x00\x00\x40"
    real = list(struct.unpack("<2d", fake))
    assert all(math.isfinite(x) for x in real)
    b = batch("h1", [(T0, real)], [("cpu_busy_percent", ()), ("cpu_load1", ())])
    data = b.SerializeToString()
    shift = data.index(fake) - (len(data) - (2 + b.snapshots[0].ByteSize()))
    # field 9 (unknown): its first 4 bytes end the fake values, then a fake "unsupported"
    b.MergeFromString(
        b"\x4a" + bytes([shift - 2]) + b"\x00\x00\x22" + bytes([shift - 6]) + b"u" * (shift - 6)
    )
    parsed = IngestRequest.FromString(request(b).SerializeToString())
    assert list(parsed.batches[0].snapshots[0].values) == real
    assert _values(parsed) == [real]


def test_pack_and_unpack_give_the_same_prepared_request() -> None:
    """What an ingest worker process sends back (``pack``) is, once unpacked against the
    parsed payload, the ``Prepared`` the store would have made itself."""
    rows = [(T0 + i * 5000, [i + 0.5, 2.0, -3.0, 4.0, 5.0]) for i in range(3)]
    empty = batch("h2", [(T0, [])])
    req = request(batch("h1", rows, processes=True), empty, batch("h3", rows[:1]))
    prep = prepare(req)
    again = IngestRequest()
    again.ParseFromString(prep.payload)
    got = unpack(pickle.loads(pickle.dumps(pack(prep), protocol=5)), again)
    assert got.payload == prep.payload and got.newest_ms == prep.newest_ms
    assert len(got.batches) == len(prep.batches) == 3
    for a, b in zip(got.batches, prep.batches, strict=True):
        assert (a.digest, a.table_digest) == (b.digest, b.table_digest)
        assert a.batch == b.batch
        assert len(a.snapshots) == len(b.snapshots)
        for x, y in zip(a.snapshots, b.snapshots, strict=True):
            assert x.ts == y.ts and x.source == y.source
            assert x.index.tolist() == y.index.tolist()
            assert x.values.tolist() == y.values.tolist()


def test_batch_arrays_share_the_table_order_and_a_repeated_index_run() -> None:
    rows = [(T0 + i * 5000, [1.0 + i, 2.0, 3.0, 4.0, 5.0]) for i in range(3)]
    b = batch("h1", rows)
    b.snapshots[2].series_index[:] = [4, 3, 2, 1, 0]
    arrs = batch_arrays(b, b.SerializeToString())
    (i0, v0), (i1, v1), (i2, v2) = arrs
    assert i0 is identity(5) and i1 is i0  # table order, read as bytes
    assert i2.tolist() == [4, 3, 2, 1, 0]
    assert [v.tolist() for v in (v0, v1, v2)] == [v for _, v in rows]
    # an index run equal to the previous snapshot's is that snapshot's array
    b.snapshots[1].series_index[:] = [4, 3, 2, 1, 0]
    b.snapshots[0].series_index[:] = [4, 3, 2, 1, 0]
    again = batch_arrays(b, b.SerializeToString())
    assert again[0][0] is not identity(5) and again[1][0] is again[0][0] is again[2][0]
    # without the serialized batch (or with unknown fields) both come from the message
    for slow in (batch_arrays(b), batch_arrays(b, b"")):
        assert [i.tolist() for i, _ in slow] == [[4, 3, 2, 1, 0]] * 3
        assert [v.tolist() for _, v in slow] == [v for _, v in rows]


def test_prepare_takes_the_checked_arrays_as_they_are() -> None:
    rows = [(T0 + i * 5000, [1.0 + i, 2.0, 3.0, 4.0, 5.0]) for i in range(3)]
    req = request(batch("h1", rows))
    data = [b.SerializeToString() for b in req.batches]
    arrays = [batch_arrays(b, d) for b, d in zip(req.batches, data, strict=True)]
    fast, slow = prepare(req, data, arrays), prepare(req)
    assert fast.payload == slow.payload and fast.newest_ms == slow.newest_ms
    for a, b in zip(fast.batches[0].snapshots, slow.batches[0].snapshots, strict=True):
        assert a.ts == b.ts and a.index.tolist() == b.index.tolist()
        assert a.values.tolist() == b.values.tolist()
    assert [ps.index for ps in fast.batches[0].snapshots] == [arrays[0][i][0] for i in range(3)]
    assert fast.batches[0].digest == slow.batches[0].digest
    # the ingest check's signature as the digest: the table is hashed only when asked for
    given = prepare(req, data, arrays, [b"s" * 16])
    assert given.batches[0].digest == b"s" * 16
    assert given.batches[0].table_digest == slow.batches[0].table_digest
    # with the check's tail sizes too: the same table span, so the same table digest
    tails = [tail_size(b) for b in req.batches]
    told = prepare(req, data, arrays, [b"s" * 16], tails)
    assert told.payload == slow.payload
    assert told.batches[0].table_digest == slow.batches[0].table_digest


@pytest.mark.parametrize(
    ("index", "values"),
    [([0, 1, 2, 3, 5], 5), ([0, 1, 2, 3, 3], 5), ([0, 1, 2, 3, 4, 5], 6), ([0, 1, 2], 2)],
)
def test_the_store_checks_each_index_run_of_a_batch(index: list[int], values: int) -> None:
    """A snapshot after one in table order is checked on its own (out of range, repeated,
    more indexes than series, a count of values unlike the count of indexes)."""
    req = request(batch("h1", [(T0, [1, 2, 3, 4, 5]), (T0 + 5000, [1, 2, 3, 4, 5])]))
    snap = req.batches[0].snapshots[1]
    snap.series_index[:] = index
    snap.values[:] = [1.0] * values
    with pytest.raises(InvalidRequestError, match=r"snapshots\[1\]"):
        prepare(req)


def test_table_keys_are_each_series_metric_and_labels_in_order() -> None:
    series = (
        ("cpu_busy_percent", ()),
        ("disk_used_bytes", (("device", "sda1"), ("mount", "/"))),
        ("cpu_busy_percent", (("cpu", "3"),)),
        ("memory_used_bytes", ()),
    )
    b = batch("h1", [(T0, [1.0, 2.0, 3.0, 4.0])], series)
    assert table_keys(b) == list(series)
    assert table_keys(batch("h2", [], ())) == []
