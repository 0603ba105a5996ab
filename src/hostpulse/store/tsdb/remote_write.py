"""Prometheus remote write (``prometheus.WriteRequest``, protobuf + snappy) encoded by hand.

Each sample is one ``TimeSeries`` with one ``Sample``, as Prometheus itself sends them. The
bytes of a series' labels (``__name__``, its catalog labels and ``host_id``, sorted by name) and
of the ``TimeSeries`` header around them are built once per host series table
(``SeriesTable``), so encoding a sample is three byte strings joined: the series' prefix, the
value and the snapshot's timestamp. Message layout (field numbers of prompb):

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from itertools import chain, repeat

import cramjam

from hostpulse import catalog
from hostpulse.protocol import HostBatch

HOST_LABEL = "host_id"
"""The label naming the host on every series (the Grafana dashboards' ``host_id``)."""
NAME_LABEL = "__name__"
CONTENT_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

_PACK_DOUBLE = struct.Struct("<d").pack
_CUSTOM = catalog.CUSTOM_PREFIX
_CATALOG_NAMES = {m.prom_name: m.key for m in catalog.METRICS}

Labels = tuple[tuple[str, str], ...]


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + varint(len(payload)) + payload


def prom_name(metric: str) -> str:
    """The series name in the TSDB: the exporter's ``node_*`` name (counters ``_total``), or
    a custom metric's own name."""
    known = catalog.BY_KEY.get(metric)
    if known is not None:
        return known.prom_name
    return metric.removeprefix(_CUSTOM)


def metric_key(name: str) -> str:
    """The catalog key of a series name read back from the TSDB (``prom_name`` reversed)."""
    return _CATALOG_NAMES.get(name) or f"{_CUSTOM}{name}"


def series_problem(metric: str, labels: Labels) -> str | None:
    """Why a (validated) series cannot go to the TSDB under its own name, or None: a custom
    metric named like a catalog series, or with a label the backend sets itself."""
    if not catalog.is_custom(metric):
        return None
    name = metric.removeprefix(_CUSTOM)
    if name in _CATALOG_NAMES:
        return f"custom metric {name!r} has the name of a catalog series"
    for label, _ in labels:
        if label == HOST_LABEL or label.startswith("__"):
            return f"custom metric {name!r}: label {label!r} is reserved by the TSDB backend"
    return None


def label_bytes(metric: str, labels: Labels, host_id: str) -> bytes:
    """The encoded ``labels`` of a TimeSeries (field 1, repeated), sorted by name."""
    pairs = sorted([(NAME_LABEL, prom_name(metric)), (HOST_LABEL, host_id), *labels])
    return b"".join(
        _field(0x0A, _field(0x0A, k.encode()) + _field(0x12, v.encode())) for k, v in pairs
    )


class SeriesTable:
    """The label bytes of every series of one host's series table, and per timestamp width
    the TimeSeries prefix (header, labels, sample header) of each."""

    __slots__ = ("_prefixes", "labels")

    def __init__(self, host_id: str, keys: Sequence[tuple[str, Labels]]) -> None:
        self.labels = [label_bytes(metric, labels, host_id) for metric, labels in keys]
        self._prefixes: dict[int, list[bytes]] = {}

    def prefixes(self, ts_width: int) -> list[bytes]:
        found = self._prefixes.get(ts_width)
        if found is None:
            sample_len = 1 + 8 + 1 + ts_width  # value tag + double + timestamp tag + varint
            sample_head = bytes((0x12, sample_len, 0x09))
            found = [
                b"\x0a" + varint(len(lab) + 2 + sample_len) + lab + sample_head
                for lab in self.labels
            ]
            self._prefixes[ts_width] = found
        return found


def encode_samples(batch: HostBatch, table: SeriesTable) -> Iterator[tuple[int, list[bytes]]]:
    """Per snapshot of the batch: its sample count and the encoded TimeSeries of its samples
    (pieces of a WriteRequest, to be joined)."""
    for snap in batch.snapshots:
        values = snap.values
        if not values:
            continue
        stamp = varint(snap.timestamp_ms)
        tail = b"\x10" + stamp
        pre = table.prefixes(len(stamp))
        pieces = list(
            chain.from_iterable(
                zip(
                    map(pre.__getitem__, snap.series_index), map(_PACK_DOUBLE, values), repeat(tail)
                )
            )
        )
        yield len(values), pieces


def compress(pieces: list[bytes]) -> bytes:
    """The snappy block (not framed) of the joined WriteRequest pieces."""
    return bytes(cramjam.snappy.compress_raw(b"".join(pieces)))


def write_chunks(
    parts: Sequence[tuple[HostBatch, SeriesTable]], max_samples: int
) -> Iterator[tuple[int, bytes]]:
    """The batches' samples as uncompressed WriteRequest bytes, in chunks of at most about
    ``max_samples`` samples (split between snapshots): ``(samples, bytes)``. Chunks joined
    are a WriteRequest too (repeated fields concatenate); ``compress`` makes the body."""
    pieces: list[bytes] = []
    count = 0
    for batch, table in parts:
        for n, encoded in encode_samples(batch, table):
            if count and count + n > max_samples:
                yield count, b"".join(pieces)
                pieces, count = [], 0
            pieces.extend(encoded)
            count += n
    if count:
        yield count, b"".join(pieces)
