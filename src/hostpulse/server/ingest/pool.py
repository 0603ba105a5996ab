"""The server's side of the ingest worker processes (``worker.py``).

``IngestWorkers`` starts ``count`` workers (``python -c`` running ``worker.main``, a
fresh interpreter: nothing of the server's threads, store or sockets is inherited) and sends
each request to the worker of its host (a hash of the agent key's host id), so that worker's
caches of checked series tables hit. A worker that is still starting, was replaced, or has
``max_inflight`` requests already is not used: the caller checks the request itself
(``run`` returns None). A worker that dies fails its requests in flight with ``WorkerDied``
(the service answers 503 + Retry-After: nothing was stored) and is started again. The server
waits for its workers at startup (``START_TIMEOUT``). ``close`` closes the workers' stdin (they
exit) and kills one that does not within a second.

A hand-over between processes costs a pipe write, a wake-up and a read on each side, so the
requests of one event-loop turn go to a worker in one write, and its answers come back read
by a protocol that resolves each request's future as its frame arrives (no task per read).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pickle
import sys
import zlib
from collections.abc import AsyncIterator
from typing import Any, cast

from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.server.ingest.worker import HELLO, frame, limits_arg, take_frames

logger = logging.getLogger(__name__)

RESTART_DELAY = 0.5
"""Seconds before a worker that exited is started again (no busy loop on a broken install)."""

START_TIMEOUT = 30
"""Seconds the server waits at startup for its workers (an interpreter start and imports)."""


_MAIN = "import sys; from hostpulse.server.ingest.worker import main; sys.exit(main(sys.argv))"
"""The worker's command (``-m`` would import the module twice: the package imports it too)."""


class WorkerDied(Exception):
    """The worker handling the request exited before answering."""


class _Worker(asyncio.SubprocessProtocol):
    def __init__(self, pool: IngestWorkers, slot: int) -> None:
        self.pool = pool
        self.slot = slot
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.ready = False
        self.pending: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self._buf = bytearray()
        self._out: list[bytes] = []
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def pid(self) -> int | None:
        return None if self.transport is None else self.transport.get_pid()

    # --- asyncio.SubprocessProtocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.SubprocessTransport, transport)
        self.stdin = cast(asyncio.WriteTransport, self.transport.get_pipe_transport(0))
        self.pool.workers[self.slot] = self

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._buf += data
        try:
            for message in take_frames(self._buf):
                if not self.ready:
                    if message != HELLO:
                        raise ValueError(f"unexpected first frame {message!r}")
                    self.ready = True
                    continue
                fut = self.pending.pop(message[0], None)
                if fut is not None and not fut.done():
                    fut.set_result(message)
        except (ValueError, pickle.PickleError, IndexError, TypeError) as exc:
            logger.error("ingest worker %d: unreadable answer (%s); stopping it", self.slot, exc)
            self.kill()

    def process_exited(self) -> None:
        self.ready = False
        lost, self.pending = self.pending, {}
        for fut in lost.values():
            if not fut.done():
                fut.set_exception(WorkerDied())
        if not self.exited.done():
            self.exited.set_result(None)
        self.pool.exited(self, len(lost))

    # --- the pool's side ----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue a frame; the frames of one loop turn are written together."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.stdin is not None and not self.stdin.is_closing():
            self.stdin.write(b"".join(out))

    def kill(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(ProcessLookupError):
                self.transport.kill()


class IngestWorkers:
    def __init__(
        self, count: int, limits: IngestLimits, *, prepare: bool, max_inflight: int = 64
    ) -> None:
        self.limits = limits
        self.prepare = prepare
        self.max_inflight = max_inflight
        self.count = count
        self.workers: list[_Worker | None] = [None] * count
        self.restarts = 0
        self._ids = itertools.count()
        self._rr = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def start(self) -> None:
        """Start every worker (in the background: requests are checked in this process until
        a worker says it is ready)."""
        for slot in range(self.count):
            self._launch(slot, 0.0)

    async def wait_ready(self, seconds: float) -> bool:
        """Wait until every worker is ready (at most ``seconds``); whether they are."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not all(w is not None and w.ready for w in self.workers):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _launch(self, slot: int, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._spawn(slot, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self, slot: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self._closing:
            return
        args = [limits_arg(self.limits), "1" if self.prepare else "0"]
        loop = asyncio.get_running_loop()
        try:
            await loop.subprocess_exec(
                lambda: _Worker(self, slot),
                sys.executable,
                "-c",
                _MAIN,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
            )
        except OSError as exc:
            logger.error("cannot start an ingest worker: %s", exc)
            self._launch(slot, RESTART_DELAY)

    def exited(self, w: _Worker, lost: int) -> None:
        if w.transport is not None:
            w.transport.close()
        if self._closing:
            return
        logger.error(
            "ingest worker %d (pid %s) exited; %d requests in flight answered 503; starting "
            "another",
            w.slot,
            w.pid,
            lost,
        )
        self.restarts += 1
        self._launch(w.slot, RESTART_DELAY)

    def _pick(self, key: str | None) -> _Worker | None:
        n = self.count
        if n == 1:
            slot = 0
        elif key is None:
            slot = next(self._rr) % n
        else:
            slot = zlib.crc32(key.encode()) % n
        w = self.workers[slot]
        if w is None or not w.ready or len(w.pending) >= self.max_inflight:
            return None
        return w

    async def run(
        self,
        key: str | None,
        now_ms: int,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
    ) -> tuple[Any, ...] | None:
        """The worker's answer for one request (see ``worker.py``); None when no worker can
        take it now; WorkerDied when its worker exits first."""
        w = self._pick(key)
        if w is None:
            return None
        rid = next(self._ids)
        fut: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        w.pending[rid] = fut
        try:
            w.send(frame((rid, now_ms, content_type, encoding, body)))
            return await fut
        finally:
            w.pending.pop(rid, None)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self.workers:
            if w is None or w.exited.done():
                continue
            if w.stdin is not None:
                w.stdin.close()  # the worker exits at the end of its input
            try:
                await asyncio.wait_for(asyncio.shield(w.exited), 1.0)
            except TimeoutError:
                w.kill()
                await w.exited


@contextlib.asynccontextmanager
async def running_workers(
    count: int, limits: IngestLimits, *, prepare: bool
) -> AsyncIterator[IngestWorkers]:
    pool = IngestWorkers(count, limits, prepare=prepare)
    pool.start()
    try:
        if not await pool.wait_ready(START_TIMEOUT):
            logger.warning(
                "ingest workers not ready after %d s: checking requests in the server process "
                "until they are",
                START_TIMEOUT,
            )
        yield pool
    finally:
        await pool.close()
