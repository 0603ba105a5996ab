"""The head's write side: a request that is durable in the WAL is applied to the head under
the head lock (one vectorised row write per snapshot); windows already compacted get their
stored samples loaded first, so that a resent or back-filled sample is found as a duplicate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from hostpulse.store import budget, codec, schema
from hostpulse.store.prepare import is_identity
from hostpulse.store.types import IngestResult

if TYPE_CHECKING:
    from hostpulse.store.head import Cols, HostHead, IntP
    from hostpulse.store.prepare import Prepared
    from hostpulse.store.state import StoreState


class HeadWriter:
    def __init__(self, state: StoreState) -> None:
        self.state = state

    async def apply_durable(self, prep: Prepared, colmaps: list[IntP]) -> IngestResult:
        """Apply a request the WAL holds; ``colmaps`` from ``Registrar.register``."""
        async with self.state.head_lock:
            await self._load_late_windows(prep)
            result = self._apply(prep, colmaps)
            heads = self.state.heads
            budget.recount(self.state, [heads[pb.batch.host.host_id] for pb in prep.batches])
            return result

    def _apply(self, prep: Prepared, colmaps: list[IntP]) -> IngestResult:
        accepted = duplicates = 0
        state = self.state
        bms = state.block_ms
        heads = state.heads
        interval = state.process_interval_ms
        for pb, cols_of in zip(prep.batches, colmaps, strict=True):
            head = heads[pb.batch.host.host_id]
            newest = head.record.last_seen_ms
            # a host whose series are its head's columns in table order, and a snapshot in
            # table order (what agents send): its values go to the first columns as a slice
            in_order = is_identity(cols_of)
            for ps in pb.snapshots:
                ts = ps.ts
                buf = head.window(ts - ts % bms)
                n = len(ps.index)
                if n:
                    ordered = in_order and is_identity(ps.index)
                    cols: Cols = slice(0, n) if ordered else cols_of[ps.index]
                    new = buf.put(ts, cols, ps.values)
                    accepted += new
                    duplicates += n - new
                    head.note_latest(ts, cols, ps.values)
                snap = ps.source
                if snap.top_cpu or snap.top_memory:
                    head.keep_processes(snap, interval)
                newest = max(newest, ts)
            head.record.last_seen_ms = newest
        return IngestResult(accepted, duplicates)

    async def _load_late_windows(self, prep: Prepared) -> None:
        state = self.state
        bms = state.block_ms
        for pb in prep.batches:
            head = state.heads[pb.batch.host.host_id]
            for ps in pb.snapshots:
                w = ps.ts - ps.ts % bms
                if w < state.watermark and w not in head.windows:
                    await self._load_window(head, w)

    async def _load_window(self, head: HostHead, w: int) -> None:
        buf = head.window(w)
        buf.old = np.zeros(buf.vals.shape, dtype=np.bool_)
        sources: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        pending = self.state.compacting.get((head.key, w))
        if pending is not None:
            ts, vals = pending.new_samples()
            cols = np.arange(vals.shape[1], dtype=np.intp)
            sources.append((ts, cols, vals))
        async with self.state.engine.connect() as conn:
            rows = await conn.execute(
                select(schema.blocks.c.data).where(
                    schema.blocks.c.host_key == head.key,
                    schema.blocks.c.kind == schema.Kind.RAW,
                    schema.blocks.c.group_ms == w,
                )
            )
            for (data,) in rows:
                b = codec.decode(data)
                cols = np.array([head.col_of[int(s)] for s in b.ids], dtype=np.intp)
                sources.append((b.ts, cols, b.matrix(0)))
        for ts, cols, vals in sources:
            buf.ensure_cols(len(head.columns))
            buf.mark_stored(ts, cols, vals)
