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
from hostpulse.store import budget, schema
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

    def drop_stored_windows(self) -> int:
        """At start, after the WAL replay: take out of the head the windows below the
        watermark that hold nothing that is not in stored blocks (a replayed record of a
        window compacted before the restart: its samples were loaded from the blocks to find
        duplicates, and all were). Every history read checked them until the first
        compaction did the same; a late sample loads its window again
        (``HeadWriter._load_late_windows``). Returns the windows dropped."""
        st = self.state
        dropped = 0
        for head in st.heads.values():
            stored = [
                w
                for w, buf in head.windows.items()
                if w < st.watermark and buf.old is not None and buf.count_new() == 0
            ]
            for w in stored:
                del head.windows[w]
            if stored:
                budget.recount(st, [head])
                dropped += len(stored)
        return dropped

    async def maintain(self, now_ms: int) -> None:
        async with self._lock:
            if not await self.compact(now_ms - self.state.grace_ms):
                # a segment a run, not a window: the segments that end before a window
                # starts are dropped when that window is compacted, a window earlier than
                # a segment a compaction allowed (the WAL held 11-22 minutes of requests,
                # now 1-13: at 2,000 hosts 190 MB a minute)
                await self.state.wal.rotate_if_written()
            await self.merge_partials()
            await self.enforce_retention(now_ms)
            await self.reclaim()

    async def compact(self, until_ms: int, *, rotate: bool = True) -> int:
        """Move every head window that ends at or before ``until_ms`` into blocks; returns the
        number of windows written. ``rotate=False`` (during WAL replay, when the head is over
        its budget) leaves the WAL alone: its records are dropped by a later compaction."""
        st = self.state
        target = max(st.watermark, until_ms - until_ms % st.block_ms)
        if not any(w < target for head in st.heads.values() for w in head.windows):
            st.watermark = target  # nothing to write; saved with the next compaction
            return 0
        closed = await st.wal.rotate() if rotate else []
        async with st.head_lock:
            st.watermark = max(st.watermark, target)
            wm = st.watermark
            jobs: list[_Job] = []
            for head in st.heads.values():
                took = False
                for w in [w for w in head.windows if w < wm]:
                    buf = head.windows.pop(w)
                    st.compacting[(head.key, w)] = buf
                    jobs.append((head, buf))
                    took = True
                if head.procs:
                    st.compacting_procs[head.key] = head.procs
                    head.procs = []
                    head.proc_ts = set()
                    head.procs_bytes = 0
                    took = True
                if took:  # the bytes stay in memory (compacting) until the blocks are stored
                    now = budget.host_bytes(head)
                    st.compacting_bytes += head.bytes - now
                    head.bytes = now
        procs = dict(st.compacting_procs)
        rows = await asyncio.to_thread(self._encode, jobs, procs)
        async with st.engine.begin() as conn:
            await self.insert_blocks(conn, rows)
            await conn.execute(
                schema.meta.delete().where(schema.meta.c.key == "watermark"),
            )
            await conn.execute(insert(schema.meta).values(key="watermark", value=str(wm)))
            if st.heads:
                await conn.execute(
                    update(schema.hosts)
                    .where(schema.hosts.c.id == bindparam("k"))
                    .values(last_seen_ms=bindparam("seen")),
                    [{"k": h.key, "seen": h.record.last_seen_ms} for h in st.heads.values()],
                )
        # before the windows leave ``compacting``, with no await between: a read sees them
        # in the head or in blocks it read after this commit, never in neither
        st.block_versions.changed({(r.host_key, int(r.kind)) for r in rows})
        st.compacting.clear()
        st.compacting_procs.clear()
        st.head_bytes -= st.compacting_bytes
        st.compacting_bytes = 0
        dropped = st.wal.drop(closed, wm)
        logger.info(
            "compacted %d windows into %d blocks; watermark %d; %d wal segments dropped",
            len(jobs),
            len(rows),
            wm,
            dropped,
        )
        return len(jobs)

    def _encode(self, jobs: list[_Job], procs: dict[int, list[Snapshot]]) -> list[blk.BlockRow]:
        rows = self._encode_windows(jobs)
        return self._merge_pass_rollups(rows) + self._encode_procs(procs)

    def _merge_pass_rollups(self, rows: list[blk.BlockRow]) -> list[blk.BlockRow]:
        """One rollup block per host, tier and day of this pass instead of one per window:
        a back-fill (days of history arriving late) compacts thousands of windows in one
        pass, and left a partial 1-minute and 1-hour block of each (144 a day) for later
        merges, which the history of those days then read in pieces. Merging is exact
        (count, sum, min and max combine), as ``merge_partials`` does it later."""
        out: list[blk.BlockRow] = []
        groups: dict[tuple[int, int, int], list[blk.BlockRow]] = {}
        for r in rows:
            if r.kind in (Kind.MINUTE, Kind.HOUR):
                groups.setdefault((r.host_key, r.kind, r.group_ms), []).append(r)
            else:
                out.append(r)
        for (h, k, g), parts in groups.items():
            if len(parts) == 1:
                out += parts
            else:
                out.append(
                    blk.merge_rollups([p.data for p in parts], h, Kind(k), g, self.state.level)
                )
        return out

    def _encode_windows(self, jobs: list[_Job]) -> list[blk.BlockRow]:
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
        return rows

    def _encode_procs(self, procs: dict[int, list[Snapshot]]) -> list[blk.BlockRow]:
        rows: list[blk.BlockRow] = []
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
        self.state.block_versions.changed({(h, k) for h, k, _ in found})
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
        emptied: list[Kind] = []
        async with self.state.engine.begin() as conn:
            for kind, limit in limits.items():
                res = await conn.execute(
                    delete(schema.blocks).where(
                        schema.blocks.c.kind == kind, schema.blocks.c.end_ms <= limit
                    )
                )
                if res.rowcount:
                    emptied.append(kind)
                deleted += res.rowcount or 0
        for kind in emptied:
            self.state.block_versions.changed_kind(int(kind))
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
