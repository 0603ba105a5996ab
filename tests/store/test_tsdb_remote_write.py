"""The hand-made remote-write encoding (``hostpulse.store.tsdb.remote_write``) decodes, with
the protobuf definitions Prometheus publishes (the subset in bench/prompb.proto, compiled
here), to exactly the samples of the batch: series names and labels as the exporter's plus
``host_id``, sorted by name; every value and timestamp exact, also for timestamps whose varint
is wider than today's; chunks of at most the asked sample count."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cramjam
import pytest

from hostpulse.protocol import HostBatch
from hostpulse.store.tsdb.remote_write import SeriesTable, compress, write_chunks

PROTO = Path(__file__).resolve().parents[2] / "bench" / "prompb.proto"


@pytest.fixture(scope="module")
def prompb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("prompb")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"--python_out={out}",
            PROTO.name,
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("prompb_pb2")
    finally:
        sys.path.remove(str(out))


def _batch(stamps: list[int]) -> HostBatch:
    b = HostBatch()
    b.host.host_id = "web-1"
    b.series.add(metric="cpu_busy_percent")
    mode = b.series.add(metric="cpu_core_usage_percent")
    mode.labels.add(name="cpu", value="0")
    mode.labels.add(name="mode", value="user")
    b.series.add(metric="disk_read_bytes").labels.add(name="device", value="sda")
    custom = b.series.add(metric="custom:queue_depth")
    custom.labels.add(name="queue", value='a "quoted"\nname')
    for k, ts in enumerate(stamps):
        snap = b.snapshots.add(timestamp_ms=ts)
        snap.series_index.extend([3, 0, 2] if k % 2 else [0, 1, 2, 3])
        snap.values.extend([k + 0.1, -(2.0**60), 1e-300] if k % 2 else [12.5, 0.0, 3e9, k])
    return b


def _keys(b: HostBatch) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [(s.metric, tuple((lb.name, lb.value) for lb in s.labels)) for s in b.series]


def test_decodes_to_the_batch(prompb: ModuleType) -> None:
    stamps = [1_796_000_000_000, 1_796_000_005_000, 2**45 + 7, 2**45 + 5007]  # 6 and 7 bytes
    batch = _batch(stamps)
    table = SeriesTable("web-1", _keys(batch))
    [(count, raw)] = list(write_chunks([(batch, table)], 1000))
    req = prompb.WriteRequest()
    req.ParseFromString(bytes(cramjam.snappy.decompress_raw(compress([raw]))))
    got = [
        ({lb.name: lb.value for lb in ts.labels}, [(s.timestamp, s.value) for s in ts.samples])
        for ts in req.timeseries
    ]
    names = {
        0: {"__name__": "node_cpu_busy_percent"},
        1: {"__name__": "node_cpu_core_usage_percent", "cpu": "0", "mode": "user"},
        2: {"__name__": "node_disk_read_bytes_total", "device": "sda"},
        3: {"__name__": "queue_depth", "queue": 'a "quoted"\nname'},
    }
    want = []
    for snap in batch.snapshots:
        for i, v in zip(snap.series_index, snap.values, strict=True):
            want.append(({**names[i], "host_id": "web-1"}, [(snap.timestamp_ms, v)]))
    assert got == want and count == len(want)
    for ts in req.timeseries:  # sorted by name, as the remote-write specification asks
        assert [lb.name for lb in ts.labels] == sorted(lb.name for lb in ts.labels)


def test_chunks_split_between_snapshots(prompb: ModuleType) -> None:
    batch = _batch([1_796_000_000_000 + 5000 * k for k in range(10)])
    table = SeriesTable("web-1", _keys(batch))
    chunks = list(write_chunks([(batch, table)], 8))
    assert [n for n, _ in chunks] == [7, 7, 7, 7, 7]  # 4 + 3 samples per pair of snapshots
    joined = prompb.WriteRequest()
    joined.ParseFromString(b"".join(raw for _, raw in chunks))  # chunks concatenate
    assert len(joined.timeseries) == 35
