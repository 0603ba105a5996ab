"""Prometheus as the reference: the Debian package started with the remote-write receiver on a
free port and a temporary TSDB, fed the same samples as hostpulse (remote-write protobuf,
snappy-compressed). The messages are compiled from ``bench/prompb.proto`` at run time."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import struct
import subprocess
import sys
import tempfile
import types
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import cramjam
import numpy as np
from _common import RawClient, dir_size, free_port, pb_field, process, varint, wait_http
from numpy.typing import NDArray

from hostpulse import catalog
from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.model import SimHost

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


def series_labels(name: str, labels: dict[str, str]) -> bytes:
    """The encoded ``labels`` of a TimeSeries (field 1, repeated), sorted as Prometheus wants."""
    pairs = [("__name__", name), *sorted(labels.items())]
    return b"".join(
        pb_field(0x0A, pb_field(0x0A, k.encode()) + pb_field(0x12, v.encode())) for k, v in pairs
    )


def sample_prefixes(labels: Sequence[bytes], ts_ms: int) -> list[bytes]:
    """Per series, the encoded TimeSeries up to its one sample's value, for timestamps of the
    same encoded length as ``ts_ms`` (see ``fast_write_request``)."""
    sample_len = 9 + 1 + len(varint(ts_ms))
    return [
        b"\x0a" + varint(len(lab) + 2 + sample_len) + lab + bytes([0x12, sample_len, 0x09])
        for lab in labels
    ]


def fast_write_request(prefixes: Sequence[bytes], ts_ms: int, values: Sequence[float]) -> bytes:
    """A snappy-compressed WriteRequest with one sample per series, encoded by hand: the same
    bytes ``write_request`` produces, without building a message object per sample."""
    tail = b"\x10" + varint(ts_ms)
    packed = struct.pack(f"<{len(values)}d", *values)
    body = b"".join(p + packed[8 * i : 8 * i + 8] + tail for i, p in enumerate(prefixes))
    return bytes(cramjam.snappy.compress_raw(body))


def multi_write_request(
    labels: Sequence[bytes], ts: Sequence[int], values: NDArray[np.float64]
) -> bytes:
    """WriteRequest: one TimeSeries per series (``labels[i]``) with a sample per timestamp,
    ``values[j, i]`` at ``ts[j]``; hand-encoded and snappy-compressed."""
    tails = [b"\x10" + varint(t) for t in ts]
    parts = []
    for i, lab in enumerate(labels):
        col = values[:, i].astype("<f8").tobytes()
        samples = b"".join(
            pb_field(0x12, b"\x09" + col[8 * j : 8 * j + 8] + tails[j]) for j in range(len(ts))
        )
        parts.append(pb_field(0x0A, lab + samples))
    return bytes(cramjam.snappy.compress_raw(b"".join(parts)))


def block_stats(tsdb: Path) -> tuple[int, int, int]:
    """(blocks, samples, bytes) of the persisted blocks (not the head/WAL)."""
    blocks = samples = size = 0
    for meta in tsdb.glob("*/meta.json"):
        info = json.loads(meta.read_text())
        blocks += 1
        samples += int(info["stats"]["numSamples"])
        size += dir_size(meta.parent)
    return blocks, samples, size


class SimFeed:
    """The same samples of simulated hosts for every system: a ``HostBatch`` (5 s interval) for
    hostpulse's store, one remote-write request for the references (``refs``: name -> URL of
    Prometheus, VictoriaMetrics; both take it at ``/api/v1/write``), sent to each over
    ``connections`` keep-alive connections. ``failed[name]`` counts the requests a reference
    refused."""

    def __init__(
        self, fleet: Sequence[SimHost], refs: dict[str, str], connections: int = 4
    ) -> None:
        self.heads = {
            h.host_id: HostBatch(host=host_message(h, 5.0), series=series_defs(h)) for h in fleet
        }
        self.labels = {
            h.host_id: [
                series_labels(catalog.get(k).prom_name, {**dict(lab), "instance": h.host_id})
                for k, lab in h.series
            ]
            for h in fleet
        }
        self.refs: dict[str, tuple[str, list[RawClient]]] = {}
        for name, url in refs.items():
            host, port = url.removeprefix("http://").split(":")
            self.refs[name] = (host, [RawClient(host, int(port)) for _ in range(connections)])
        self.failed = dict.fromkeys(refs, 0)

    def batch(self, h: SimHost, ts: list[int], vals: NDArray[np.float64]) -> HostBatch:
        """Host ``h``'s snapshots: ``vals[r]`` at ``ts[r]``."""
        b = HostBatch()
        b.CopyFrom(self.heads[h.host_id])
        idx = list(range(vals.shape[1]))
        for r, tv in enumerate(ts):
            b.snapshots.append(Snapshot(timestamp_ms=tv, series_index=idx, values=vals[r].tolist()))
        return b

    def send(
        self, n: int, h: SimHost, ts: list[int], vals: NDArray[np.float64]
    ) -> Coroutine[Any, Any, list[tuple[str, int, bytes]]]:
        """The same samples to every reference on connection ``n`` (round-robin); not sent
        until awaited (``settle``)."""
        body = multi_write_request(self.labels[h.host_id], ts, vals)

        async def to_all() -> list[tuple[str, int, bytes]]:
            out = []
            for name, (host, conns) in self.refs.items():
                raw = RawClient.build("POST", "/api/v1/write", host, WRITE_HEADERS, body)
                out.append((name, *await conns[n % len(conns)].send(raw)))
            return out

        return to_all()

    async def settle(self, sends: list[Coroutine[Any, Any, list[tuple[str, int, bytes]]]]) -> None:
        """Send, count the refused requests and show the first three of each reference."""
        for answers in await asyncio.gather(*sends):
            for name, status, text in answers:
                if status >= 300:
                    self.failed[name] += 1
                    if self.failed[name] <= 3:
                        print(f"  {name} refused: {status} {text[:200]!r}", file=sys.stderr)

    async def close(self) -> None:
        for _, conns in self.refs.values():
            for c in conns:
                await c.close()
