"""Builders of wire messages for the server tests."""

from __future__ import annotations

import gzip
import socket
import time

import httpx

from hostpulse.protocol import Host, HostBatch, IngestRequest, Label, SeriesDef

Labels = tuple[tuple[str, str], ...]


def now_ms() -> int:
    return int(time.time() * 1000)


def batch(
    host_id: str,
    snapshots: list[tuple[int, dict[tuple[str, Labels], float]]],
    interval: float = 5.0,
) -> HostBatch:
    """A host batch from ``[(ts_ms, {(metric, labels): value})]``."""
    keys: list[tuple[str, Labels]] = []
    for _, values in snapshots:
        for k in values:
            if k not in keys:
                keys.append(k)
    hb = HostBatch(
        host=Host(
            host_id=host_id,
            hostname=f"{host_id}.example",
            os="Linux",
            kernel="6.1.0",
            arch="x86_64",
            cpu_model="Test CPU",
            logical_cores=4,
            memory_bytes=8 << 30,
            interval_seconds=interval,
            labels=[Label(name="env", value="test")],
        ),
        series=[
            SeriesDef(metric=m, labels=[Label(name=n, value=v) for n, v in lab]) for m, lab in keys
        ],
    )
    for ts, values in snapshots:
        snap = hb.snapshots.add(timestamp_ms=ts)
        for k, v in values.items():
            snap.series_index.append(keys.index(k))
            snap.values.append(v)
    return hb


def request(*batches: HostBatch) -> IngestRequest:
    return IngestRequest(batches=list(batches))


CPU = ("cpu_busy_percent", ())
MEM = ("memory_usage_percent", ())


def mixed_bodies(t: int) -> list[tuple[str, bytes, str | None, str | None]]:
    """(host, body, content-encoding, content-type) of requests of every outcome: stored,
    resent (duplicates), each kind of 422, malformed (400), an unknown encoding or type (415),
    a batch for another host than the key's (403). ``t``: a timestamp (ms) a minute old."""
    good = request(batch("w-1", [(t, {CPU: 1.0, MEM: 2.0}), (t + 5000, {CPU: 3.0})]))
    unknown = request(batch("w-2", [(t, {("no_such_metric", ()): 1.0})]))
    bad_index = request(batch("w-3", [(t, {CPU: 1.0})]))
    bad_index.batches[0].snapshots[0].series_index[0] = 7
    nan = request(batch("w-3", [(t, {CPU: float("nan")})]))
    future = request(batch("w-3", [(t + 3_600_000, {CPU: 1.0})]))
    four: HostBatch = batch(
        "w-4", [(t, {CPU: 1.0, MEM: 1.0, ("cpu_load1", ()): 1.0, ("cpu_load5", ()): 1.0})]
    )
    return [
        ("w-1", good.SerializeToString(), None, None),
        ("w-1", gzip.compress(good.SerializeToString()), "gzip", None),  # resent: duplicates
        ("w-1", request(batch("w-1", [(t + 10_000, {MEM: 4.0})])).SerializeToString(), None, None),
        ("w-2", unknown.SerializeToString(), None, None),
        ("w-3", bad_index.SerializeToString(), None, None),
        ("w-3", nan.SerializeToString(), None, None),
        ("w-3", future.SerializeToString(), None, None),
        ("w-4", request(four).SerializeToString(), None, None),  # over max_series_per_host
        ("w-1", b"\x0a\xff\xff", None, None),  # malformed
        ("w-1", b"not gzip", "gzip", None),
        ("w-1", good.SerializeToString(), "br", None),
        ("w-1", good.SerializeToString(), None, "text/plain"),
        ("w-2", request(batch("w-1", [(t, {CPU: 1.0})])).SerializeToString(), None, None),
    ]


def raw_connection(url: str, timeout: float) -> socket.socket:
    """A plain TCP connection to the server at ``url``, reads bounded by ``timeout``."""
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_to_close(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out, time.monotonic() - started


def post_ingest(url: str, key: str, body: bytes) -> httpx.Response:
    """An agent's ``POST /api/v1/ingest``: ``body`` (a gzipped, encoded IngestRequest, as
    ``codec.encode`` makes it) with its agent key."""
    return httpx.post(
        f"{url}/api/v1/ingest",
        content=body,
        headers={
            "content-type": "application/x-protobuf",
            "content-encoding": "gzip",
            "authorization": f"Bearer {key}",
        },
        timeout=30,
    )
