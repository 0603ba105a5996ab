"""Checking a parsed request whole: the count bounds, each batch's host and series table (once
per signature), every snapshot. Pure apart from two caches, so the same code runs in the
server process and in an ingest worker process (``worker.py``): both answer alike."""

from __future__ import annotations

from dataclasses import dataclass

from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.server.ingest.decode import check_counts
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.server.ingest.validate import (
    SeriesKey,
    series_keys,
    series_signature,
    table_digest,
    tail_sizes,
    validate_host,
    validate_snapshots,
    validate_table,
)
from hostpulse.store.prepare import Arrays, batch_arrays


@dataclass(slots=True)
class Checked:
    """A validated request, with what storing it needs."""

    request: IngestRequest
    signatures: list[bytes]
    per_host: dict[str, list[SeriesKey]]
    fresh: list[bytes]
    serialized: list[bytes]
    """Each batch serialized (``prepare`` can take them instead of serializing again)."""
    arrays: list[Arrays] | None = None
    """Each batch's ``batch_arrays``, checked (``prepare`` takes them as they are)."""
    tails: list[int] | None = None
    """Each batch's ``tail_size`` (``prepare`` does not add it up again)."""
    tables: list[bytes | None] | None = None
    """Each batch's series-table digest when the check made it (a batch whose signature is
    new: the store registers its table by it), else None."""


class Checker:
    """Validates requests. ``validated`` holds the signatures (``series_signature``) whose host
    and series table need no second look: the service puts there the ones it has stored, a
    worker the ones it has checked. A series table checked once is remembered by its digest
    (hosts of one kind send the same table)."""

    MAX_SIGNATURES = 200_000
    MAX_TABLES = 4096

    def __init__(self, limits: IngestLimits) -> None:
        self.limits = limits
        self.validated: set[bytes] = set()
        self._tables: dict[bytes, list[SeriesKey]] = {}
        """series-table digest -> its keys, for tables that passed ``validate_table``"""

    def remember(self, signatures: list[bytes]) -> None:
        if len(self.validated) + len(signatures) > self.MAX_SIGNATURES:
            self.validated.clear()
        self.validated.update(signatures)

    def check(self, request: IngestRequest, now_ms: int, counted: bool = False) -> Checked:
        """Validate ``request`` whole (IngestError(413/422) naming the first problem). Touches
        no state but reads the set of validated signatures and adds to the cache of checked
        series tables (single dict operations): safe in a worker thread. ``counted``: the
        caller has passed the request through ``check_counts`` already."""
        limits = self.limits
        if not counted:
            check_counts(request, limits)
        per_host: dict[str, list[SeriesKey]] = {}
        signatures: list[bytes] = []  # of each batch
        fresh: list[bytes] = []  # of the batches whose table is validated by this request
        serialized: list[bytes] = []
        arrays: list[Arrays] = []
        tails: list[int] = []
        tables: list[bytes | None] = []
        samples = 0
        for b, batch in enumerate(request.batches):
            data = batch.SerializeToString()
            serialized.append(data)
            sizes = tail_sizes(batch)  # the snapshots' and unsupported fields' bytes
            tail = sizes[0] + sizes[1]
            tails.append(tail)
            sig = series_signature(batch, data, sizes)
            signatures.append(sig)
            table = None
            if sig not in self.validated:
                validate_host(batch, b, limits)
                keys, table = self._table(batch, data, sizes)
                per_host.setdefault(batch.host.host_id, []).extend(keys)
                fresh.append(sig)
            tables.append(table)
            arrs = batch_arrays(batch, data, tail)
            arrays.append(arrs)
            samples += validate_snapshots(batch, now_ms, limits, arrs)
            if samples > limits.max_samples:
                raise IngestError(
                    413,
                    f"the request has more than {limits.max_samples} samples (max_samples)",
                )
        return Checked(request, signatures, per_host, fresh, serialized, arrays, tails, tables)

    def keys_of(self, batch: HostBatch, digest: bytes) -> list[SeriesKey]:
        """The keys of a series table another process has checked, whose ``table_digest`` is
        ``digest``: from the cache (hosts of one kind share a table) or read once."""
        keys = self._tables.get(digest)
        if keys is None:
            keys = series_keys(batch)
            if len(self._tables) >= self.MAX_TABLES:
                self._tables.clear()
            self._tables[digest] = keys
        return keys

    def _table(
        self, batch: HostBatch, data: bytes, sizes: tuple[int, int] | None = None
    ) -> tuple[list[SeriesKey], bytes | None]:
        """The keys of the batch's series table once it is checked (IngestError(422)), and the
        table's digest (None when it cannot be cut out); a table checked before (for another
        host of the same kind, say) is taken from the cache."""
        digest = table_digest(batch, data, sizes)
        keys = self._tables.get(digest) if digest is not None else None
        if keys is None:
            keys = series_keys(batch)
            validate_table(batch.host.host_id, keys)
            if digest is not None:
                if len(self._tables) >= self.MAX_TABLES:
                    self._tables.clear()
                self._tables[digest] = keys
        return keys, digest
