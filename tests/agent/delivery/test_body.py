"""The spliced gzip body of a one-snapshot request decompresses (with gzip and with the server's
own decoder) to the same IngestRequest the ordinary encoding gives."""

from __future__ import annotations

import gzip
import zlib

from delivery_helpers import make_batch

from hostpulse.agent.delivery.body import gzip_request_for
from hostpulse.agent.delivery.shipper import build_request, encode_record
from hostpulse.agent.delivery.spool import SpooledRecord
from hostpulse.protocol import IngestRequest, SeriesDef
from hostpulse.protocol.codec import decompress


def record(payload: bytes) -> SpooledRecord:
    return SpooledRecord(seq=1, ts_ms=1000, payload=payload)


def test_spliced_body_is_the_request() -> None:
    for size in (1, 50, 3000):  # varint lengths of 1, 2 and 3 bytes
        batch = make_batch(ts_ms=1000)
        for i in range(size):
            batch.series.append(SeriesDef(metric=f"custom:m{i}"))
        payload = encode_record(batch)
        body = gzip_request_for(payload)
        assert body is not None
        expected = build_request([record(payload)]).SerializeToString()
        assert gzip.decompress(body) == expected
        assert decompress(body, "gzip", 10_000_000) == expected  # the server's codec
        req = IngestRequest()
        req.ParseFromString(gzip.decompress(body))
        assert list(req.batches) == [batch]


def test_other_records_fall_back() -> None:
    batch = make_batch(ts_ms=1000)
    assert gzip_request_for(b"\x00" + batch.SerializeToString()) is None  # raw record kind
    with_dict = zlib.compressobj(zdict=b"hostpulse")
    stream = with_dict.compress(batch.SerializeToString()) + with_dict.flush()
    assert gzip_request_for(b"\x01" + stream) is None
