"""Compaction, merging of partial blocks, retention and space reclamation."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hostpulse.protocol import Snapshot
from hostpulse.store import blocks as blk
from hostpulse.store import schema
from hostpulse.store.schema import Kind

if TYPE_CHECKING:
    from hostpulse.store.head import HostHead, WindowBuf
    from hostpulse.store.state import StoreState

logger = logging.getLogger(__name__)

#: A group (a day of rollups, a window of raw samples) is merged once complete, or earlier
#: when this many partial blocks have piled up in it.
MERGE_AT = 12
#: Free pages are returned to the file system once they are this share of the file.
RECLAIM_AT = 0.05
_Job = tuple["HostHead", "WindowBuf"]


class Compactor:
    """Moves closed head windows into blocks, merges partial blocks, enforces retention and
    gives free pages back; one maintenance pass at a time."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self._lock = asyncio.Lock()

    async def find_touched_groups(self) -> None:
        """At start: the groups that already hold more than one block (to be merged)."""
        c = schema.blocks.c
        async with self.state.engine.connect() as conn:
            rows = await conn.execute(
                select(c.host_key, c.kind, c.group_ms, func.count())
                .group_by(c.host_key, c.kind, c.group_ms)
                .having(func.count() > 1)
            )
            self.state.touched_groups = {(int(a), int(b), int(g)): int(n) for a, b, g, n in rows}

    async def maintain(self, now_ms: int) -> None:
        async with self._lock:
            await self.compact(now_ms - self.state.grace_ms)
            await self.merge_partials()
            await self.enforce_retention(now_ms)
            await self.reclaim()

    async def compact(self, until_ms: int) -> int:
        """Move every head window that ends at or before ``until_ms`` into blocks; returns the
        number of windows written."""
        target = max(self.state.watermark, until_ms - until_ms % self.state.block_ms)
        if not any(w < target for head in self.state.heads.values() for w in head.windows):
            self.state.watermark = target  # nothing to write; saved with the next compaction
            return 0
        closed = await self.state.wal.rotate()
        async with self.state.head_lock:
            self.state.watermark = max(self.state.watermark, target)
            wm = self.state.watermark
            jobs: list[_Job] = []
            for head in self.state.heads.values():
                for w in [w for w in head.windows if w < wm]:
                    buf = head.windows.pop(w)
                    self.state.compacting[(head.key, w)] = buf
                    jobs.append((head, buf))
                if head.procs:
                    self.state.compacting_procs[head.key] = head.procs
                    head.procs = []
                    head.proc_ts = set()
        procs = dict(self.state.compacting_procs)
        rows = await asyncio.to_thread(self._encode, jobs, procs)
        async with self.state.engine.begin() as conn:
            await self.insert_blocks(conn, rows)
            await conn.execute(
                schema.meta.delete().where(schema.meta.c.key == "watermark"),
            )
            await conn.execute(insert(schema.meta).values(key="watermark", value=str(wm)))
            if self.state.heads:
                await conn.execute(
                    update(schema.hosts)
                    .where(schema.hosts.c.id == bindparam("k"))
                    .values(last_seen_ms=bindparam("seen")),
                    [
                        {"k": h.key, "seen": h.record.last_seen_ms}
                        for h in self.state.heads.values()
                    ],
                )
        self.state.compacting.clear()
        self.state.compacting_procs.clear()
        dropped = self.state.wal.drop(closed, wm)
        logger.info(
            "compacted %d windows into %d blocks; watermark %d; %d wal segments dropped",
            len(jobs),
            len(rows),
            wm,
            dropped,
        )
        return len(jobs)

    def _encode(self, jobs: list[_Job], procs: dict[int, list[Snapshot]]) -> list[blk.BlockRow]:
        rows: list[blk.BlockRow] = []
        for head, buf in jobs:
            ts, vals = buf.new_samples()
            if len(ts) == 0:
                continue
            n = vals.shape[1]
            cols = head.columns[:n]
            ids = np.array([c.series_id for c in cols], dtype=np.int64)
            kmax = np.array([c.kmax for c in cols], dtype=np.int64)
            lossy = np.array([c.lossy for c in cols], dtype=np.bool_)
            rows += blk.compact_window(
                head.key, buf.start, ts, vals[:, : len(cols)], ids, kmax, lossy, self.state.level
            )
        for key, snaps in procs.items():
            by_window: dict[int, list[Snapshot]] = {}
            for s in snaps:
                by_window.setdefault(
                    s.timestamp_ms - s.timestamp_ms % self.state.block_ms, []
                ).append(s)
            for w, group in by_window.items():
                tss = [s.timestamp_ms for s in group]
                data = blk.encode_processes(group, self.state.level)
                rows.append(
                    blk.BlockRow(key, Kind.PROCESSES, w, min(tss), max(tss) + 1, len(group), data)
                )
        return rows

    async def insert_blocks(self, conn: AsyncConnection, rows: list[blk.BlockRow]) -> None:
        if rows:
            await conn.execute(insert(schema.blocks), [r.as_dict() for r in rows])
        for r in rows:
            key = (r.host_key, r.kind, r.group_ms)
            self.state.touched_groups[key] = self.state.touched_groups.get(key, 0) + 1

    async def merge_partials(self) -> int:
        """Merge the blocks of a group into one once the group is complete (or crowded)."""
        ready: list[tuple[int, int, int]] = []
        for (h, k, g), n in list(self.state.touched_groups.items()):
            span = blk.DAY_MS if k in (Kind.MINUTE, Kind.HOUR) else self.state.block_ms
            closed = g + span <= self.state.watermark
            if n <= 1 and closed:
                del self.state.touched_groups[(h, k, g)]
            elif n > 1 and (closed or n >= MERGE_AT):
                ready.append((h, k, g))
        if not ready:
            return 0
        c = schema.blocks.c
        found: dict[tuple[int, int, int], list[tuple[int, bytes]]] = {}
        async with self.state.engine.connect() as conn:
            for h, k, g in ready:
                res = await conn.execute(
                    select(c.id, c.data).where(c.host_key == h, c.kind == k, c.group_ms == g)
                )
                found[(h, k, g)] = [(int(i), bytes(d)) for i, d in res]
        merged = await asyncio.to_thread(
            lambda: [self._merge(*key, [d for _, d in rows]) for key, rows in found.items() if rows]
        )
        async with self.state.engine.begin() as conn:
            ids = [i for rows in found.values() for i, _ in rows]
            for chunk in range(0, len(ids), 500):
                await conn.execute(delete(schema.blocks).where(c.id.in_(ids[chunk : chunk + 500])))
            if merged:
                await conn.execute(insert(schema.blocks), [r.as_dict() for r in merged])
        for key in ready:
            self.state.touched_groups[key] = 1
        return len(merged)

    def _merge(self, h: int, k: int, g: int, datas: list[bytes]) -> blk.BlockRow:
        if k == Kind.RAW:
            return blk.merge_raw(datas, h, g, self.state.level)
        if k == Kind.PROCESSES:
            seen: dict[int, Snapshot] = {}
            for d in datas:
                for s in blk.decode_processes(d):
                    seen.setdefault(s.timestamp_ms, s)
            snaps = list(seen.values())
            tss = [s.timestamp_ms for s in snaps]
            data = blk.encode_processes(snaps, self.state.level)
            return blk.BlockRow(h, Kind.PROCESSES, g, min(tss), max(tss) + 1, len(snaps), data)
        return blk.merge_rollups(datas, h, Kind(k), g, self.state.level)

    async def enforce_retention(self, now_ms: int) -> int:
        """Delete blocks past their tier's retention and give the space back to the OS."""
        limits = {
            Kind.RAW: now_ms - self.state.retention.raw * 1000,
            Kind.PROCESSES: now_ms - self.state.retention.raw * 1000,
            Kind.MINUTE: now_ms - self.state.retention.minute * 1000,
            Kind.HOUR: now_ms - self.state.retention.hour * 1000,
        }
        deleted = 0
        async with self.state.engine.begin() as conn:
            for kind, limit in limits.items():
                res = await conn.execute(
                    delete(schema.blocks).where(
                        schema.blocks.c.kind == kind, schema.blocks.c.end_ms <= limit
                    )
                )
                deleted += res.rowcount or 0
        if deleted:
            logger.info("retention: %d blocks deleted", deleted)
        return deleted

    async def reclaim(self, min_free_share: float = RECLAIM_AT) -> int:
        """Give free pages (left by retention and by merged partial blocks) back to the file
        system once they exceed ``min_free_share`` of the file; returns pages released."""
        async with self.state.engine.connect() as conn:
            free = int((await conn.exec_driver_sql("PRAGMA freelist_count")).scalar_one())
            pages = int((await conn.exec_driver_sql("PRAGMA page_count")).scalar_one())
            if free == 0 or free < pages * min_free_share:
                return 0
            # run to completion (a plain execute() steps the pragma once: one page)
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.executescript("PRAGMA incremental_vacuum;")
        async with self.state.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        logger.info("reclaimed %d free pages of %d", free, pages)
        return free
