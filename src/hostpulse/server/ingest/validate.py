"""Validating a parsed request: host fields, series tables against the catalog, snapshots.

The hot path works per snapshot, not per sample, on each snapshot's index and values read once
as arrays (``store.prepare.batch_arrays``, which the store then takes as they are): finiteness
is one vectorised ``isfinite``, the index range one ``max``, repeats one ``bincount``, and an
index run in table order (what agents send) or equal to the previous snapshot's needs neither;
a host's series definitions are validated once and remembered by a digest, so a host that
keeps sending the same series costs one serialisation and a set lookup.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from hostpulse import catalog
from hostpulse.protocol import HostBatch, Process
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.store.prepare import (
    Arrays,
    IntP,
    batch_arrays,
    is_identity,
    plain_layout,
    table_keys,
)

MAX_ID_LENGTH = 200
MAX_LABEL_LENGTH = 1024
MAX_LABEL_NAME = 128
MAX_HOSTNAME = 255
MAX_HOST_TEXT = 256
"""os, kernel, arch, cpu_model, agent_version; and a process's name and user."""
MAX_STATUS = 32
MAX_CMDLINE = 4096
MAX_UNSUPPORTED = 1000

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def _check_series_def(host_id: str, i: int, metric: str, labels: SeriesKey) -> None:
    m = catalog.BY_KEY.get(metric)
    where = f"host {host_id!r} series[{i}]"
    if m is None and catalog.is_custom(metric):
        problem = catalog.custom_problem(metric, labels[1])
        if problem is not None:
            raise IngestError(422, f"{where} ({metric[:100]}): {problem}")
        return
    if m is None:
        raise IngestError(422, f"{where}: unknown metric {metric!r} (not in the catalog)")
    names = tuple(n for n, _ in labels[1])
    if names != m.labels:
        raise IngestError(
            422,
            f"{where} ({metric}): labels {list(names)} do not match the catalog's "
            f"{list(m.labels)} (names and order)",
        )
    for n, v in labels[1]:
        if len(v) > MAX_LABEL_LENGTH:
            raise IngestError(422, f"{where} ({metric}): label {n!r} is longer than 1024")


def series_keys(batch: HostBatch) -> list[SeriesKey]:
    return table_keys(batch)


def _text(where: str, name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise IngestError(422, f"{where}: {name} is {len(value)} characters, at most {limit}")


def _finite(where: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise IngestError(422, f"{where}: {name} is {value} (must be finite)")


def validate_host(batch: HostBatch, b: int, limits: IngestLimits) -> None:
    """Bounds and finiteness of a batch's host fields and unsupported list; IngestError(422)."""
    h = batch.host
    host_id = h.host_id
    if not host_id:
        raise IngestError(422, f"batches[{b}]: host.host_id is empty")
    if len(host_id) > MAX_ID_LENGTH:
        raise IngestError(422, f"batches[{b}]: host.host_id is longer than {MAX_ID_LENGTH}")
    where = f"host {host_id!r}"
    iv = h.interval_seconds
    if not math.isfinite(iv) or iv < 0:
        raise IngestError(422, f"{where}: interval_seconds must be >= 0")
    _finite(where, "boot_time", h.boot_time)
    _text(where, "hostname", h.hostname, MAX_HOSTNAME)
    for name in ("os", "kernel", "arch", "cpu_model", "agent_version"):
        _text(where, name, getattr(h, name), MAX_HOST_TEXT)
    if len(h.labels) > limits.max_host_labels:
        raise IngestError(
            422,
            f"{where}: {len(h.labels)} labels, at most {limits.max_host_labels} (max_host_labels)",
        )
    for lb in h.labels:
        _text(where, "a label name", lb.name, MAX_LABEL_NAME)
        _text(where, f"label {lb.name!r}", lb.value, MAX_LABEL_LENGTH)
    if len(batch.unsupported) > MAX_UNSUPPORTED:
        raise IngestError(422, f"{where}: unsupported lists more than {MAX_UNSUPPORTED} metrics")
    for u in batch.unsupported:
        _text(where, "an unsupported entry", u, MAX_ID_LENGTH)


def validate_table(host_id: str, keys: list[SeriesKey]) -> None:
    """Check a series table (its keys, in order) against the catalog; IngestError(422) naming
    ``host_id``. Depends on nothing else of the batch: a valid table is valid for any host."""
    for i, key in enumerate(keys):
        _check_series_def(host_id, i, key[0], key)
    if len(set(keys)) != len(keys):
        raise IngestError(422, f"host {host_id!r}: a series is declared twice")


def validate_series(
    batch: HostBatch, b: int, keys: list[SeriesKey], limits: IngestLimits | None = None
) -> None:
    """Check a batch's host and series table against the catalog and the bounds;
    IngestError(422)."""
    validate_host(batch, b, limits or IngestLimits())
    validate_table(batch.host.host_id, keys)


def _check_processes(where: str, name: str, procs: Sequence[Process], limit: int) -> None:
    if len(procs) > limit:
        raise IngestError(
            422, f"{where}: {name} has {len(procs)} processes, at most {limit} (max_processes)"
        )
    for p in procs:
        if not (math.isfinite(p.cpu_percent) and math.isfinite(p.mem_percent)):
            raise IngestError(422, f"{where}: {name} pid {p.pid}: percentages must be finite")
        if (
            len(p.name) > MAX_HOST_TEXT
            or len(p.user) > MAX_HOST_TEXT
            or len(p.status) > MAX_STATUS
            or len(p.cmdline) > MAX_CMDLINE
        ):
            raise IngestError(
                422,
                f"{where}: {name} pid {p.pid}: name and user at most {MAX_HOST_TEXT} "
                f"characters, status {MAX_STATUS}, cmdline {MAX_CMDLINE}",
            )


def validate_snapshots(
    batch: HostBatch, now_ms: int, limits: IngestLimits, arrays: Arrays | None = None
) -> int:
    """Check every snapshot of a batch whose series table is valid; return its sample count.
    Timestamps must lie within [now - max_past, now + max_future]; the batch's distinct
    timestamps times its series count (the cells of the head's matrices it may add: one row of
    the host's series per timestamp, however few values the snapshot has) are bounded by
    max_head_cells. ``arrays``: the batch's ``batch_arrays`` (read here when None); an index
    array that is the previous snapshot's (the same object) or ``identity`` is known to hold
    no repeat, so only its range is looked at."""
    host_id = batch.host.host_id
    n_series = len(batch.series)
    horizon = now_ms + limits.max_future_ms
    oldest = now_ms - limits.max_past_ms
    samples = 0
    stamps: set[int] = set()
    if arrays is None:
        arrays = batch_arrays(batch)
    checked: IntP | None = None
    for s, (snap, (idx, values)) in enumerate(zip(batch.snapshots, arrays, strict=True)):
        n = len(values)
        if len(idx) != n:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(422, f"{where}: {n} values but {len(idx)} series_index entries")
        ts = snap.timestamp_ms
        if ts < oldest or ts > horizon:
            where = f"host {host_id!r} snapshots[{s}]"
            if ts <= 0:
                raise IngestError(422, f"{where}: timestamp_ms must be positive")
            if ts < oldest:
                raise IngestError(
                    422,
                    f"{where}: timestamp_ms {ts} is more than "
                    f"{limits.max_past_ms // 1000} s in the past (max_past)",
                )
            raise IngestError(
                422,
                f"{where}: timestamp_ms {ts} is more than "
                f"{limits.max_future_ms // 1000} s in the future",
            )
        stamps.add(ts)
        if snap.top_cpu or snap.top_memory:
            where = f"host {host_id!r} snapshots[{s}]"
            _check_processes(where, "top_cpu", snap.top_cpu, limits.max_processes)
            _check_processes(where, "top_memory", snap.top_memory, limits.max_processes)
        if n == 0:
            continue
        same = idx is checked  # checked with the previous snapshot
        known = same or is_identity(idx)
        top = -1 if same else n - 1 if known else int(idx.max())
        if top >= n_series:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(
                422, f"{where}: series_index {top} is out of range ({n_series} series)"
            )
        finite = np.isfinite(values)
        if not finite.all():
            j = int(np.flatnonzero(~finite)[0])
            name = batch.series[int(idx[j])].metric
            raise IngestError(
                422,
                f"host {host_id!r} snapshots[{s}]: value of {name} is {float(values[j])} "
                "(must be finite)",
            )
        if not known and np.bincount(idx).max() > 1:
            where = f"host {host_id!r} snapshots[{s}]"
            raise IngestError(422, f"{where}: a series appears twice in one snapshot")
        checked = idx
        samples += n
    cells = len(stamps) * max(n_series, 1)
    if cells > limits.max_head_cells:
        raise IngestError(
            413,
            f"host {host_id!r}: {len(stamps)} distinct timestamps x {n_series} series = "
            f"{cells}, over max_head_cells ({limits.max_head_cells}): send fewer snapshots "
            "per request",
        )
    return samples


def _field_size(size: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag and ``size`` bytes of content."""
    return 2 + size if size < 0x80 else 1 + (size.bit_length() + 6) // 7 + size


def series_signature(
    batch: HostBatch, data: bytes | None = None, sizes: tuple[int, int] | None = None
) -> bytes:
    """A digest of the batch serialized without its snapshots (host identity, series table,
    unsupported list). ``data``: the batch serialized, when the caller has it; ``sizes``:
    its ``tail_sizes`` (only meaningful with ``data``, in the plain layout).

    The serialization is ``host``, ``series``, ``snapshots``, ``unsupported`` in field order,
    so those bytes are the serialized batch minus the snapshots' span: one C-level
    serialisation instead of a copy of the batch (half the cost). Should a serializer ever
    order the fields differently, the copy is made (same digest)."""
    if data is None:
        data = batch.SerializeToString()
    if not plain_layout(batch):  # unknown fields come last: the offsets below would be off
        return _signature_of_copy(batch)
    cut, tail = _table_end(batch, data, sizes)
    if cut is not None:
        view = memoryview(data)
        digest = hashlib.blake2b(view[:cut], digest_size=16)
        digest.update(view[len(data) - tail :])
        return digest.digest()
    return _signature_of_copy(batch)


def tail_sizes(batch: HostBatch) -> tuple[int, int]:
    """Bytes of the batch's serialized ``snapshots`` fields and of its ``unsupported`` fields
    (they come last, in this order, in the plain layout)."""
    snaps = 0
    for s in batch.snapshots:
        snaps += _field_size(s.ByteSize())
    tail = 0
    for u in batch.unsupported:
        tail += _field_size(len(u.encode()))
    return snaps, tail


def _table_end(
    batch: HostBatch, data: bytes, sizes: tuple[int, int] | None = None
) -> tuple[int | None, int]:
    """Where the series table of the serialized ``batch`` ends (None when the layout is not
    the plain one) and the size of its ``unsupported`` tail; ``sizes``: ``tail_sizes``."""
    snaps, tail = tail_sizes(batch) if sizes is None else sizes
    cut = len(data) - snaps - tail
    if (
        cut >= 0
        and (snaps == 0 or data[cut] == 0x1A)
        and (tail == 0 or data[len(data) - tail] == 0x22)
    ):
        return cut, tail
    return None, tail


def table_digest(
    batch: HostBatch, data: bytes | None = None, sizes: tuple[int, int] | None = None
) -> bytes | None:
    """A digest of the batch's series table alone (hosts of one kind send the same table);
    None when the table cannot be cut out of the serialized batch (``data``, when the caller
    has it; ``sizes``: its ``tail_sizes``)."""
    if data is None:
        data = batch.SerializeToString()
    if not plain_layout(batch):
        return None
    cut, _ = _table_end(batch, data, sizes)
    if cut is None:
        return None
    host = _field_size(batch.host.ByteSize()) if batch.HasField("host") else 0
    if cut < host or (cut > host and data[host] != 0x12):
        return None
    return hashlib.blake2b(memoryview(data)[host:cut], digest_size=16).digest()


def _signature_of_copy(batch: HostBatch) -> bytes:
    head = HostBatch()
    head.CopyFrom(batch)
    head.ClearField("snapshots")
    head.DiscardUnknownFields()
    return hashlib.blake2b(head.SerializeToString(), digest_size=16).digest()
