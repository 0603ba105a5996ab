"""The ingest preparation reads values straight from the serialized batch, and falls back to
the parsed message for any layout it does not expect."""

from __future__ import annotations

import numpy as np
import pytest
from storekit import T0, batch, request

from hostpulse.protocol import IngestRequest
from hostpulse.store.exceptions import InvalidRequestError
from hostpulse.store.prepare import prepare


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
