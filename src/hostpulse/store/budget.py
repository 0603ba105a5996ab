"""The byte budget of the in-memory head, per host and in total.

What ingest may add to memory is bounded per request by the server's count limits, but not
across requests: one agent key sending back-filled samples spread over many past windows (each
a matrix of the host's series) grew the head by ~2.5 MB a request, 250 MB a minute at the
default rate limit, until the next compaction. So the store counts the bytes each host's
head holds (matrices, timestamps, row index, kept process lists) and refuses, before anything
is written to the WAL, a request that would take the host or the store past its budget.
Compaction (``maintain``) moves closed windows to disk and gives the bytes back.

The estimate of what a request adds is exact for the matrices (rows grow by doubling, columns
too) except for a late window (one already compacted), whose stored samples are loaded too;
that overshoot is at most one window of the host, and the real figure is counted once the
request is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hostpulse.store.exceptions import HeadFullError

if TYPE_CHECKING:
    from hostpulse.store.head import HostHead, WindowBuf
    from hostpulse.store.prepare import Prepared, PreparedBatch
    from hostpulse.store.state import StoreState

ROW_OVERHEAD = 104
"""Bytes of a row's entry in a window's ``row_of`` dict (entry + two int objects)."""
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HeadBudget:
    """``per_host``: bytes one host's head may hold (a 150-series host at 5 s holds ~0.3 MiB;
    5,000 series at 1 s ~50 MiB); ``total``: bytes all heads together may hold (10,000 hosts
    x 150 series at 5 s: ~3 GiB). 0 turns a bound off."""

    per_host: int = 64 * MIB
    total: int = 8 * 1024 * MIB


def window_bytes(buf: WindowBuf) -> int:
    old = buf.old.nbytes if buf.old is not None else 0
    return buf.vals.nbytes + buf.ts.nbytes + old + len(buf.row_of) * ROW_OVERHEAD


def host_bytes(head: HostHead) -> int:
    """What the host's head holds now: its windows and kept process lists."""
    return sum(window_bytes(b) for b in head.windows.values()) + head.procs_bytes


def _grown(cap: int, rows: int) -> int:
    while cap < rows:
        cap *= 2
    return cap


def batch_growth(head: HostHead, pb: PreparedBatch, block_ms: int, watermark: int) -> int:
    """Bytes storing ``pb`` would add to ``head`` (its series already registered)."""
    cols = len(head.columns)
    fresh: dict[int, set[int]] = {}
    procs = 0
    windows = head.windows
    for ps in pb.snapshots:
        ts = ps.ts
        w = ts - ts % block_ms
        buf = windows.get(w)
        if buf is None or ts not in buf.row_of:
            stamps = fresh.get(w)
            if stamps is None:
                fresh[w] = {ts}
            else:
                stamps.add(ts)
        src = ps.source
        if src.top_cpu or src.top_memory:
            procs += src.ByteSize()
    added = procs
    for w, stamps in fresh.items():
        buf = windows.get(w)
        rows = len(stamps)
        if buf is None:
            width = max(cols, 4)
            cap = _grown(1, rows)
            cell = 9 if w < watermark else 8  # a late window also marks stored cells
            added += cap * (width * cell + 8) + rows * ROW_OVERHEAD
            continue
        cap, width = buf.vals.shape
        new_cap = _grown(cap, buf.n + rows)
        new_width = max(cols, width * 2) if cols > width else width
        if new_cap != cap or new_width != width:
            cell = 9 if buf.old is not None else 8
            added += new_cap * new_width * cell - cap * width * cell + (new_cap - cap) * 8
        added += rows * ROW_OVERHEAD
    return added


Reservation = list[tuple["HostHead", int]]


def reserve(state: StoreState, prep: Prepared) -> Reservation:
    """Count what storing ``prep`` would add against the budget until ``release``: concurrent
    requests of one host cannot all pass on the same free bytes. HeadFullError (nothing
    reserved) when it would take a host's head or all heads together over the budget."""
    budget = state.budget
    if not budget.per_host and not budget.total:
        return []
    taken: Reservation = []
    total = 0
    for pb in prep.batches:
        head = state.heads[pb.batch.host.host_id]
        added = batch_growth(head, pb, state.block_ms, state.watermark)
        used = head.bytes + head.reserved
        if budget.per_host and used + added > budget.per_host:
            raise HeadFullError(
                f"host {head.record.host_id!r}: its in-memory head holds {used:,} bytes "
                f"and this request would add {added:,}, over max_head_bytes_per_host "
                f"({budget.per_host:,}); samples of closed windows go to disk at the next "
                "maintenance run: send again then, with fewer past windows per request",
                whole_store=False,
            )
        taken.append((head, added))
        total += added
    used = state.head_bytes + state.head_reserved
    if budget.total and used + total > budget.total:
        raise HeadFullError(
            f"the store's in-memory heads hold {used:,} bytes and this request would add "
            f"{total:,}, over max_head_bytes ({budget.total:,}); send again after the next "
            "maintenance run",
            whole_store=True,
        )
    for head, added in taken:
        head.reserved += added
    state.head_reserved += total
    return taken


def release(state: StoreState, taken: Reservation) -> None:
    for head, added in taken:
        head.reserved -= added
        state.head_reserved -= added


def recount(state: StoreState, heads: list[HostHead]) -> None:
    """Count the bytes of ``heads`` again (after a write) into the host and store totals."""
    for head in heads:
        now = host_bytes(head)
        state.head_bytes += now - head.bytes
        head.bytes = now


def fits(state: StoreState, prep: Prepared) -> bool:
    """Whether ``prep`` would pass ``reserve`` now (nothing is reserved)."""
    try:
        release(state, reserve(state, prep))
    except HeadFullError:
        return False
    return True
