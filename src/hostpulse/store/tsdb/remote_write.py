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
from hostpulse.protocol import HostBatch, varint

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


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + varint.encode(len(payload)) + payload


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
    """Per series of one host's series table, the TimeSeries prefix (header, label bytes,
    sample header) for the usual timestamp width (milliseconds of these years take 6 varint
    bytes); other widths are derived when met. Only the prefixes are kept: about 150 bytes
    per series."""

    __slots__ = ("_prefixes",)

    def __init__(self, host_id: str, keys: Sequence[tuple[str, Labels]]) -> None:
        labels = [label_bytes(metric, lab, host_id) for metric, lab in keys]
        self._prefixes: dict[int, list[bytes]] = {TS_WIDTH: _prefixes(labels, TS_WIDTH)}

    @property
    def labels(self) -> list[bytes]:
        """The label bytes of each series (taken out of the kept prefixes)."""
        out = []
        for p in self._prefixes[TS_WIDTH]:
            pos = 1  # after the tag: the varint of the TimeSeries' length
            while p[pos] & 0x80:
                pos += 1
            out.append(p[pos + 1 : -3])  # up to the sample header
        return out

    def prefixes(self, ts_width: int) -> list[bytes]:
        found = self._prefixes.get(ts_width)
        if found is None:
            found = self._prefixes[ts_width] = _prefixes(self.labels, ts_width)
        return found


TS_WIDTH = len(varint.encode(1_700_000_000_000))


def _prefixes(labels: list[bytes], ts_width: int) -> list[bytes]:
    sample_len = 1 + 8 + 1 + ts_width  # value tag + double + timestamp tag + varint
    sample_head = bytes((0x12, sample_len, 0x09))
    return [
        b"\x0a" + varint.encode(len(lab) + 2 + sample_len) + lab + sample_head for lab in labels
    ]


def encode_samples(batch: HostBatch, table: SeriesTable) -> Iterator[tuple[int, list[bytes]]]:
    """Per snapshot of the batch: its sample count and the encoded TimeSeries of its samples
    (pieces of a WriteRequest, to be joined)."""
    for snap in batch.snapshots:
        values = snap.values
        if not values:
            continue
        stamp = varint.encode(snap.timestamp_ms)
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
