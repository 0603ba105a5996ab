"""The store's write-ahead log: an ingest is acknowledged only after its request is in a
segment file and fsynced. Concurrent ingests share one fsync (group commit).

A record is ``<u32 length><u32 crc32><payload>``. Segments are numbered files; the store
rotates to a new segment at every maintenance run (when the current one holds records) and
drops closed segments whose newest sample is older than the compaction watermark
(everything in them is committed to SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

_REC = struct.Struct("<II")
_SUFFIX = ".wal"
_PROBE_BYTES = 4096
_NO_TS = -(2**62)
COMMIT_SPACING_S = 0.002
"""A group commit starts at least this long after the one before it started. At one request
every few milliseconds there is nothing to wait for; under load the records of the next 2 ms
share one write and fsync. In the fleet bench (one request per host every 5 s) a commit
took one request and a bit (1.37 at 6,000 hosts: 875 fsyncs a second), and each cost
about 0.13 ms of kernel time in the writer thread plus the hand-over on the event loop: a
fifth of the server's CPU per request. A record waits for at most this long more than the
fsync before it."""


@dataclass(slots=True)
class Segment:
    number: int
    path: Path
    max_ts: int = _NO_TS
    inflight: int = 0  # appended records whose samples are not yet in the head
    closed: bool = False


@dataclass(slots=True)
class _Pending:
    data: bytes
    future: asyncio.Future[None]
    segment: Segment = field(repr=False)


class WriteAheadLog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.segments: list[Segment] = []
        self._fh: BinaryIO | None = None
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._commit_started = float("-inf")  # loop time of the last group commit's start
        self._io_lock = asyncio.Lock()
        self._drain_waiters: list[asyncio.Future[None]] = []  # rotates waiting on ``applied``
        self._torn = False  # a failed write could not be undone: start a new segment first
        self._writer = _Writer()

    @property
    def current(self) -> Segment:
        return self.segments[-1]

    def read_existing(self) -> Iterator[tuple[Segment, bytes]]:
        """Every intact record of the existing segments, oldest first; a torn tail (a crash
        during a write) is truncated. The caller raises ``segment.max_ts`` as it applies them,
        then calls ``finish_replay``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            seg = Segment(int(path.stem), path, closed=True)
            self.segments.append(seg)
            data = path.read_bytes()
            off = 0
            while off + _REC.size <= len(data):
                length, crc = _REC.unpack_from(data, off)
                end = off + _REC.size + length
                payload = data[off + _REC.size : end]
                if end > len(data) or zlib.crc32(payload) != crc:
                    break
                yield seg, payload
                off = end
            if off != len(data):
                logger.warning("wal segment %s: dropping %d torn bytes", path, len(data) - off)
                with path.open("r+b") as fh:
                    fh.truncate(off)
                    os.fsync(fh.fileno())

    def finish_replay(self) -> None:
        """Start a new segment for new records."""
        self._open_new()

    def _open_new(self) -> None:
        number = self.segments[-1].number + 1 if self.segments else 1
        path = self.directory / f"{number:012d}{_SUFFIX}"
        if self._fh is not None:
            self._fh.close()
            self.current.closed = True
        # unbuffered: after a failed write no bytes linger in a buffer to be written later
        self._fh = path.open("ab", buffering=0)
        self.segments.append(Segment(number, path))
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def begin(self, payload: bytes, max_ts: int) -> tuple[Segment, asyncio.Future[None]]:
        """Queue a record; the future resolves once it is durable. The caller must call
        ``applied(segment)`` when the record's samples are in the head (or will not be)."""
        seg = self.current
        seg.max_ts = max(seg.max_ts, max_ts)
        seg.inflight += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        record = _REC.pack(len(payload), zlib.crc32(payload)) + payload
        self._pending.append(_Pending(record, fut, seg))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return seg, fut

    def applied(self, seg: Segment) -> None:
        """The samples of a record appended to ``seg`` are in the head. (Once per request:
        no lock, a rotate waiting for its closed segments is woken to look again.)"""
        seg.inflight -= 1
        if self._drain_waiters:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._commit_started + COMMIT_SPACING_S - loop.time()
            if wait > 0:  # under load: the records of the next moment join this commit
                await asyncio.sleep(wait)
            async with self._io_lock:
                batch, self._pending = self._pending, []
                if batch:
                    self._commit_started = loop.time()
                    await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            if self._torn:
                self._open_new()
                self._torn = False
            fh = self._fh
            assert fh is not None
            await self._writer.write(fh, b"".join(p.data for p in batch))
        except OSError as exc:
            # the records were not acknowledged; what was written of them is cut off again, so
            # the records appended after it stay readable (replay stops at a torn record)
            self._torn = self._torn or not getattr(exc, "undone", False)
            logger.error("wal write failed: %s", exc)
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p in batch:
            if not p.future.done():
                p.future.set_result(None)

    async def rotate(self) -> list[Segment]:
        """Close the current segment (after writing what is queued for it) and open a new
        one. Returns the closed segments once every record in them is in the head."""
        async with self._io_lock:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)
            self._open_new()
        closed = [s for s in self.segments if s.closed]
        while any(s.inflight for s in closed):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter
        return closed

    async def rotate_if_written(self) -> None:
        """``rotate`` when the current segment holds a record (an idle store makes no empty
        segments)."""
        if self.current.max_ts != _NO_TS:
            await self.rotate()

    def drop(self, segments: list[Segment], watermark: int) -> int:
        """Delete closed segments whose newest sample is below ``watermark``."""
        dropped = 0
        for seg in segments:
            if seg.closed and seg.max_ts < watermark and seg in self.segments:
                seg.path.unlink(missing_ok=True)
                self.segments.remove(seg)
                dropped += 1
        return dropped

    def probe(self) -> None:
        """Write (and remove) a small file beside the segments: OSError when the log could not
        be written now (disk full, directory gone)."""
        path = self.directory / "ready.probe"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                if os.write(fd, bytes(_PROBE_BYTES)) < _PROBE_BYTES:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            finally:
                os.close(fd)
        finally:
            path.unlink(missing_ok=True)

    def bytes_on_disk(self) -> int:
        return sum(s.path.stat().st_size for s in self.segments if s.path.exists())

    async def close(self) -> None:
        async with self._io_lock:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)
            self._writer.stop()
            if self._fh is not None:
                self._fh.close()
                self._fh = None


_Job = tuple[BinaryIO, bytes, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class _Writer:
    """The thread that appends and fsyncs the log's batches (one at a time: ``_io_lock``), so
    the event loop runs on during the fsync. One long-lived thread, not ``asyncio.to_thread``
    per group commit: that copied the context, went through the executor's queue, locks and
    futures and a future chained back, about a tenth of the event loop's samples (py-spy) in
    the fleet bench at 2,000 requests a second; here it is a queue put, one wake-up of this
    thread and one ``call_soon_threadsafe`` back."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def write(self, fh: BinaryIO, data: bytes) -> asyncio.Future[None]:
        """``_write_and_sync(fh, data)`` in the thread; the future has its outcome."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(
                target=_serve, args=(self._jobs,), name="hostpulse-wal", daemon=True
            )
            self._thread.start()
        self._jobs.put((fh, data, loop, fut))
        return fut

    def stop(self) -> None:
        """End the thread (after the write in progress, if any); a later write starts it
        again."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()


def _serve(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        fh, data, loop, fut = job
        error: BaseException | None = None
        try:
            _write_and_sync(fh, data)
        except BaseException as exc:  # the waiting ingest gets it, as from to_thread
            error = exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
            loop.call_soon_threadsafe(_settle, fut, error)
        del job, fh, data, loop, fut, error


def _settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if fut.done():  # the waiter was cancelled
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


def _write_and_sync(fh: BinaryIO, data: bytes) -> None:
    """Append ``data`` and fsync; on failure truncate the file back to where it was (the
    exception then has ``undone = True``), so no partial record stays in the segment."""
    fd = fh.fileno()
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)
        except OSError:
            raise exc from None
        exc.undone = True  # type: ignore[attr-defined]
        raise
