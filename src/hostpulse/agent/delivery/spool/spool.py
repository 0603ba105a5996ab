"""The durable on-disk buffer between the collectors and the server.

Every snapshot is appended here before it is sent and leaves only when the server has
acknowledged it (or refused it for good). Records live in segment files (see ``spoolfile``);
which of them are gone is kept in ``state.json`` as a cursor (every sequence at or below it is
gone) plus the few sequences acknowledged out of order (the live samples sent alongside a
backlog). Persistent counters live in the same file, so they survive restarts.

Durability: an append is one ``write`` (a killed process loses nothing written); the segment is
fsync'd at most once per ``fsync_interval`` by ``sync()`` (the shipper calls it from a timer)
when it holds a record not yet delivered, before every state write and on ``close()``. State
is written at most once per ``state_interval`` otherwise (an agent that crashes sends up to
that much again; the server stores it once), and always before a segment file is deleted, so
a crash never turns delivered or dropped records into "lost" ones.
Recovery at open checks every record's CRC, skips damaged regions, rewrites damaged segments
with their intact records and counts what was lost (sequence gaps, plus a torn tail) exactly
once.

Caps: the oldest whole segments are dropped when the size cap would be exceeded, and records
older than ``max_age`` are dropped; both are counted (``dropped_size`` / ``dropped_age``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import file as sf
from hostpulse.agent.delivery.spool.lock import LockHeld, lock_exclusive
from hostpulse.agent.delivery.spool.recovery import recover
from hostpulse.agent.delivery.spool.state import SpoolState, write_state

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    seq: int
    ts_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpoolStats:
    pending_records: int
    bytes: int
    segments: int
    counters: dict[str, int]


@dataclass(slots=True)
class _Segment:
    base: int
    path: Path
    size: int
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_ts: int | None = None

    def add(self, seq: int, ts_ms: int, nbytes: int) -> None:
        if self.first_seq is None:
            self.first_seq = seq
        self.last_seq, self.last_ts = seq, ts_ms
        self.count += 1
        self.size += nbytes


class SpoolError(Exception):
    """The spool cannot take this record (too large for a segment, disk full, closed)."""


def _lock_directory(directory: Path) -> int:
    """An exclusive lock on the spool directory for this process's lifetime (released by the
    kernel if it dies): two agents appending to one spool would corrupt each other."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        lock_exclusive(fd)
    except LockHeld:
        os.close(fd)
        raise SpoolError(f"spool directory {directory} is in use by another agent") from None
    return fd


class Spool:
    def __init__(
        self,
        settings: SpoolSettings,
        *,
        clock: Callable[[], float] = time.time,
        tail_cache: int = 32,
    ) -> None:
        self._settings = settings
        self._dir = settings.directory()
        self._clock = clock
        self._seg_limit = settings.segment_limit()
        self._lock = threading.RLock()
        self._tail: deque[SpooledRecord] = deque(maxlen=tail_cache)
        self._rfds: dict[int, int] = {}
        self._inflight: set[int] = set()
        self._dropped_inflight: set[int] = set()
        self._dirty = False
        self._state_dirty = False
        self._state_written = 0.0
        self._closed = False
        self._dropped_reasons: dict[int, str] = {}
        self._live_mark = 0  # newest sequence handed out so far
        self._lock_fd = _lock_directory(self._dir)
        try:
            found = recover(self._dir)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._state: SpoolState = found.state
        self._segs = [_Segment(s.base, s.path, s.size) for s in found.segments]
        for seg, rec in zip(self._segs, found.segments, strict=True):
            for h in rec.records:
                seg.add(h.seq, h.ts_ms, 0)
        self._pending = found.pending
        self._next_seq = self._state.checked + 1
        self._state_size = 0
        self._head = (0, sf.SEGMENT_HEADER.size)
        self._new_active()
        self._advance()
        self._write_state()

    # --- appending -----------------------------------------------------------------------
    def append(self, payload: bytes, ts_ms: int | None = None) -> int:
        """Store one record; its sequence number. Never blocks on the network."""
        limit = self._seg_limit - sf.SEGMENT_HEADER.size - sf.RECORD_HEADER.size
        if len(payload) > min(limit, sf.MAX_PAYLOAD):
            raise SpoolError(f"record of {len(payload)} bytes is larger than a spool segment")
        with self._lock:
            self._check_open()
            ts = int(self._clock() * 1000) if ts_ms is None else ts_ms
            seq = self._next_seq
            raw = sf.encode_record(seq, ts, payload)
            active = self._segs[-1]
            if active.count and active.size + len(raw) > self._seg_limit:
                self._roll()
            while self._total_bytes() + len(raw) > self._settings.max_bytes and len(self._segs) > 1:
                self._drop_oldest("dropped_size")
            self._write(raw)
            self._segs[-1].add(seq, ts, len(raw))
            self._next_seq = seq + 1
            self._pending += 1
            self._bump("queued", 1)
            self._dirty = True
            self._tail.append(SpooledRecord(seq, ts, payload))
            return seq

    def _write(self, raw: bytes) -> None:
        """All of ``raw`` or nothing: a failed write (disk full) is cut off again so that no
        torn record sits in front of the next append."""
        view = memoryview(raw)
        try:
            while view:
                view = view[os.write(self._wfd, view) :]
        except OSError as exc:
            try:
                os.ftruncate(self._wfd, self._segs[-1].size)
            except OSError:
                logger.exception("spool: cannot cut off a partial record")
            raise SpoolError(f"cannot write to the spool: {exc.strerror or exc}") from None

    def _new_active(self) -> None:
        base = self._next_seq
        path = self._dir / sf.segment_name(base)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(fd, sf.encode_segment_header(base))
        os.fsync(fd)
        sf.fsync_dir(self._dir)
        self._wfd = fd
        self._segs.append(_Segment(base, path, sf.SEGMENT_HEADER.size))

    def _roll(self) -> None:
        os.fsync(self._wfd)
        os.close(self._wfd)
        self._dirty = False
        self._new_active()

    def _total_bytes(self) -> int:
        return sum(s.size for s in self._segs) + self._state_size

    # --- reading and acknowledging -------------------------------------------------------
    def read_batch(self, max_records: int, max_bytes: int, live: int = 0) -> list[SpooledRecord]:
        """The oldest pending records (at most ``max_records`` / ``max_bytes`` of payload, at
        least one), then up to ``live`` of the newest records appended since the previous call
        when the batch did not reach them, so that current samples keep flowing while a backlog
        drains."""
        with self._lock:
            self._check_open()
            self._drop_expired_head()
            out: list[SpooledRecord] = []
            size = 0
            reached_end = True
            for seg, h in self._iter_from_head():
                if h.seq in self._state.acked_ahead:
                    continue
                if out and (len(out) >= max_records or size + h.length > max_bytes):
                    reached_end = False
                    break
                out.append(SpooledRecord(h.seq, h.ts_ms, sf.read_payload(self._rfd(seg), h)))
                size += h.length
            if not reached_end and live > 0:
                low = max(out[-1].seq, self._live_mark)
                newest = [
                    r for r in self._tail if r.seq > low and r.seq not in self._state.acked_ahead
                ]
                out.extend(newest[-live:])
            if out:
                self._live_mark = max(self._live_mark, out[-1].seq)
            self._inflight = {r.seq for r in out}
            self._dropped_inflight.clear()
            self._dropped_reasons.clear()
            return out

    def ack(
        self, seqs: Iterable[int], *, delivered: bool = True, count_as: str | None = None
    ) -> int:
        """Remove records the server accepted (``delivered``) or refused for good. Returns how
        many of them the caller should count as sent / rejected: a record the size cap had
        already dropped while it was in flight counts as sent (and is taken off the dropped
        counter) when delivered, and only as dropped when refused. ``count_as`` adds that number
        to a counter under the same lock, so no reader of ``stats()`` sees the records gone from
        the spool but not yet counted."""
        with self._lock:
            n = 0
            for s in seqs:
                if s in self._dropped_inflight:
                    self._dropped_inflight.discard(s)
                    if delivered:
                        self._bump(self._dropped_reason_of(s), -1)
                        n += 1
                elif s > self._state.cursor and s not in self._state.acked_ahead:
                    self._state.acked_ahead.add(s)
                    self._pending -= 1
                    n += 1
            self._inflight.clear()
            self._advance()
            self._state_dirty = True
            if count_as is not None:
                self._bump(count_as, n)
            return n

    def _dropped_reason_of(self, seq: int) -> str:
        return self._dropped_reasons.get(seq, "dropped_size")

    def _iter_from_head(self) -> Iterable[tuple[_Segment, sf.RecordHeader]]:
        idx, off = self._head
        while idx < len(self._segs):
            seg = self._segs[idx]
            fd = self._rfd(seg)
            while (h := sf.read_header(fd, off, seg.size)) is not None:
                yield seg, h
                off = h.end
            idx, off = idx + 1, sf.SEGMENT_HEADER.size

    def _advance(self) -> None:
        """Move the head past records that are gone (at or below the cursor, or acknowledged
        out of order and now contiguous)."""
        idx, off = self._head
        st = self._state
        while idx < len(self._segs):
            seg = self._segs[idx]
            h = sf.read_header(self._rfd(seg), off, seg.size)
            if h is None:
                if idx == len(self._segs) - 1:
                    break
                idx, off = idx + 1, sf.SEGMENT_HEADER.size
                continue
            if h.seq <= st.cursor:
                off = h.end
            elif h.seq in st.acked_ahead:
                st.acked_ahead.discard(h.seq)
                st.cursor = h.seq
                off = h.end
            else:
                break
        self._head = (idx, off)

    def _drop_expired_head(self) -> None:
        cutoff = int((self._clock() - self._settings.max_age) * 1000)
        while True:
            self._advance()
            idx, off = self._head
            seg = self._segs[idx]
            h = sf.read_header(self._rfd(seg), off, seg.size)
            if h is None or h.ts_ms >= cutoff:
                return
            self._bump("dropped_age", 1)
            self._pending -= 1
            self._state.cursor = h.seq
            self._head = (idx, h.end)

    # --- caps ----------------------------------------------------------------------------
    def _drop_oldest(self, reason: str) -> None:
        seg = self._segs[0]
        st = self._state
        n = 0
        fd = self._rfd(seg)
        off = sf.SEGMENT_HEADER.size
        while (h := sf.read_header(fd, off, seg.size)) is not None:
            if h.seq > st.cursor and h.seq not in st.acked_ahead:
                n += 1
                if h.seq in self._inflight:
                    self._dropped_inflight.add(h.seq)
                    self._dropped_reasons[h.seq] = reason
            off = h.end
        if n:
            logger.warning("spool %s cap: dropped %d oldest records", reason[8:], n)
        self._bump(reason, n)
        self._pending -= n
        if seg.last_seq is not None and seg.last_seq > st.cursor:
            st.cursor = seg.last_seq
        st.acked_ahead = {s for s in st.acked_ahead if s > st.cursor}
        self._write_state()
        self._remove_front(1)
        self._advance()

    def _remove_front(self, k: int) -> None:
        for seg in self._segs[:k]:
            fd = self._rfds.pop(seg.base, None)
            if fd is not None:
                os.close(fd)
            seg.path.unlink(missing_ok=True)
        del self._segs[:k]
        idx, off = self._head
        self._head = (idx - k, off) if idx >= k else (0, sf.SEGMENT_HEADER.size)

    # --- durability ----------------------------------------------------------------------
    def sync(self) -> None:
        """fsync what was appended, enforce the age cap, persist the cursor and counters and
        delete fully delivered segments. Called at most once per ``fsync_interval``."""
        with self._lock:
            if self._closed:
                return
            # Only records still pending need to reach the disk: when everything appended
            # since the last fsync was already delivered (the usual case a second after an
            # append), the fsync waits for the next state write, close or pending record.
            if self._dirty and self._state.cursor < self._next_seq - 1:
                os.fsync(self._wfd)
                self._dirty = False
            cutoff = int((self._clock() - self._settings.max_age) * 1000)
            while len(self._segs) > 1 and (self._segs[0].last_ts or 0) < cutoff:
                self._drop_oldest("dropped_age")
            consumed = self._head[0]
            if consumed and consumed < len(self._segs):
                self._write_state()
                self._remove_front(consumed)
            elif self._state_dirty and (
                time.monotonic() - self._state_written >= self._settings.state_interval
            ):
                self._write_state()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.sync()
            self._write_state()
            os.close(self._wfd)
            for fd in self._rfds.values():
                os.close(fd)
            self._rfds.clear()
            os.close(self._lock_fd)  # releases the lock
            self._closed = True

    def _write_state(self) -> None:
        if self._dirty:  # every record the state counts as appended is on disk first
            os.fsync(self._wfd)
            self._dirty = False
        self._state.last_seq = self._next_seq - 1
        self._state_size = write_state(self._dir, self._state)
        self._state_dirty = False
        self._state_written = time.monotonic()

    # --- counters ------------------------------------------------------------------------
    def _bump(self, name: str, n: int) -> None:
        self._state.counters[name] = self._state.counters.get(name, 0) + n
        self._state_dirty = True

    def add_counter(self, name: str, n: int = 1) -> None:
        """Count something (sent, rejected, retried...) in the persistent counters."""
        with self._lock:
            self._bump(name, n)

    def stats(self) -> SpoolStats:
        with self._lock:
            return SpoolStats(
                pending_records=self._pending,
                bytes=self._total_bytes(),
                segments=len(self._segs),
                counters=dict(self._state.counters),
            )

    # --- helpers -------------------------------------------------------------------------
    def _rfd(self, seg: _Segment) -> int:
        fd = self._rfds.get(seg.base)
        if fd is None:
            fd = self._rfds[seg.base] = os.open(seg.path, os.O_RDONLY)
        return fd

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError("the spool is closed")

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
