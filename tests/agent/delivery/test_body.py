"""The spliced gzip body of a one-snapshot request decompresses (with gzip and with the server's
own decoder) to the same IngestRequest the ordinary encoding gives."""

from __future__ import annotations

import gzip
import zlib

from delivery_helpers import PLAIN, make_batch

from hostpulse.agent.delivery.body import gzip_request_for
from hostpulse.agent.delivery.record import RecordEncoder, decode_record, encode_record
from hostpulse.agent.delivery.shipper import build_request
from hostpulse.agent.delivery.spool import SpooledRecord
from hostpulse.protocol import HostBatch, IngestRequest, SeriesDef
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


def _encoded_batches() -> list[HostBatch]:
    """Snapshots as an agent makes them: the same table, then a container that appears, a
    custom series added at the end, a host whose name changes, a container that goes."""
    batches = []
    for ts in range(1000, 1004):
        batches.append(make_batch(ts_ms=ts))
    grown = make_batch(ts_ms=1004)
    grown.series.insert(3, SeriesDef(metric="container_cpu_usage_seconds"))
    grown.snapshots[0].series_index.append(len(PLAIN))
    grown.snapshots[0].values.append(5.0)
    batches += [grown, grown]
    appended = HostBatch()
    appended.CopyFrom(grown)
    appended.series.append(SeriesDef(metric="custom:queue_depth"))
    appended.snapshots[0].series_index.append(len(PLAIN) + 1)
    appended.snapshots[0].values.append(7.0)
    batches += [appended, appended]
    renamed = HostBatch()
    renamed.CopyFrom(appended)
    renamed.host.hostname = "host-a.example"
    batches += [renamed, make_batch(ts_ms=1009), make_batch(ts_ms=1010), HostBatch()]
    return batches


def test_encoder_records_are_the_batches_and_their_bodies_the_requests() -> None:
    encoder = RecordEncoder()
    for batch in _encoded_batches():
        encoded = encoder.encode(batch)
        assert decode_record(encoded.payload) == batch
        assert zlib.decompress(encoded.payload[1:]) == batch.SerializeToString()
        assert encoded.size == batch.ByteSize()
        body = gzip_request_for(encoded.payload, (encoded.request_crc32, encoded.size))
        assert body is not None
        assert body == gzip_request_for(encoded.payload)  # same as from the record alone
        expected = build_request([record(encoded.payload)]).SerializeToString()
        assert gzip.decompress(body) == expected
        assert decompress(body, "gzip", 10_000_000) == expected  # the server's codec


def test_encoder_compresses_the_series_table_once() -> None:
    """The table is compressed at a higher level once: records are no larger than one
    compression of each batch at level 1 (what the agent spooled before)."""
    batch = make_batch(ts_ms=1000)
    for i in range(300):
        batch.series.append(SeriesDef(metric=f"custom:m{i}"))
        batch.snapshots[0].series_index.append(len(PLAIN) + i)
        batch.snapshots[0].values.append(i * 1.5)
    encoder = RecordEncoder()
    first = encoder.encode(batch).payload
    batch.snapshots[0].values[0] = 42.0
    second = encoder.encode(batch).payload
    assert decode_record(second) == batch
    assert len(second) <= len(encode_record(batch))
    assert first[:20] == second[:20]  # the table's compressed blocks are reused
