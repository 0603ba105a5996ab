"""Prometheus as the reference: the Debian package started with the remote-write receiver on a
free port and a temporary TSDB, fed the same samples as hostpulse (remote-write protobuf,
snappy-compressed). The messages are compiled from ``bench/prompb.proto`` at run time."""

from __future__ import annotations

import contextlib
import importlib
import json
import struct
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import cramjam
import numpy as np
from _common import free_port, process, wait_http
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
PROMETHEUS = "/usr/bin/prometheus"
WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def prompb() -> types.ModuleType:
    """The generated module of bench/prompb.proto (compiled into a temp dir once)."""
    out = Path(tempfile.mkdtemp(prefix="prompb-"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"--python_out={out}",
            "prompb.proto",
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    return importlib.import_module("prompb_pb2")


@contextlib.contextmanager
def prometheus(
    tsdb: Path, log: Path, *extra: str, retention: str = "400d"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Prometheus with ``--web.enable-remote-write-receiver`` and no scrape targets."""
    port = free_port()
    cfg = tsdb.parent / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    cmd = [
        PROMETHEUS,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={tsdb}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        *extra,
    ]
    with process(cmd, log) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", proc=proc)
        yield url, proc


def write_request(
    pb: types.ModuleType,
    series: Sequence[tuple[str, dict[str, str]]],
    ts_ms: Sequence[int],
    values: Sequence[Sequence[float]],
) -> bytes:
    """A snappy-compressed WriteRequest: ``values[i][j]`` is series i at ``ts_ms[j]``."""
    req = pb.WriteRequest()
    for (name, labels), row in zip(series, values, strict=True):
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value=name)
        for k in sorted(labels):
            ts.labels.add(name=k, value=labels[k])
        for t, v in zip(ts_ms, row, strict=True):
            ts.samples.add(value=v, timestamp=t)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def series_labels(name: str, labels: dict[str, str]) -> bytes:
    """The encoded ``labels`` of a TimeSeries (field 1, repeated), sorted as Prometheus wants."""
    pairs = [("__name__", name), *sorted(labels.items())]
    return b"".join(
        _field(0x0A, _field(0x0A, k.encode()) + _field(0x12, v.encode())) for k, v in pairs
    )


def sample_prefixes(labels: Sequence[bytes], ts_ms: int) -> list[bytes]:
    """Per series, the encoded TimeSeries up to its one sample's value, for timestamps of the
    same encoded length as ``ts_ms`` (see ``fast_write_request``)."""
    sample_len = 9 + 1 + len(_varint(ts_ms))
    return [
        b"\x0a" + _varint(len(lab) + 2 + sample_len) + lab + bytes([0x12, sample_len, 0x09])
        for lab in labels
    ]


def fast_write_request(prefixes: Sequence[bytes], ts_ms: int, values: Sequence[float]) -> bytes:
    """A snappy-compressed WriteRequest with one sample per series, encoded by hand: the same
    bytes ``write_request`` produces, without building a message object per sample."""
    tail = b"\x10" + _varint(ts_ms)
    packed = struct.pack(f"<{len(values)}d", *values)
    body = b"".join(p + packed[8 * i : 8 * i + 8] + tail for i, p in enumerate(prefixes))
    return bytes(cramjam.snappy.compress_raw(body))


def multi_write_request(
    labels: Sequence[bytes], ts: Sequence[int], values: NDArray[np.float64]
) -> bytes:
    """WriteRequest: one TimeSeries per series (``labels[i]``) with a sample per timestamp,
    ``values[j, i]`` at ``ts[j]``; hand-encoded and snappy-compressed."""
    tails = [b"\x10" + _varint(t) for t in ts]
    parts = []
    for i, lab in enumerate(labels):
        col = values[:, i].astype("<f8").tobytes()
        samples = b"".join(
            _field(0x12, b"\x09" + col[8 * j : 8 * j + 8] + tails[j]) for j in range(len(ts))
        )
        parts.append(_field(0x0A, lab + samples))
    return bytes(cramjam.snappy.compress_raw(b"".join(parts)))


def block_stats(tsdb: Path) -> tuple[int, int, int]:
    """(blocks, samples, bytes) of the persisted blocks (not the head/WAL)."""
    blocks = samples = size = 0
    for meta in tsdb.glob("*/meta.json"):
        info = json.loads(meta.read_text())
        blocks += 1
        samples += int(info["stats"]["numSamples"])
        size += sum(f.stat().st_size for f in meta.parent.rglob("*") if f.is_file())
    return blocks, samples, size
