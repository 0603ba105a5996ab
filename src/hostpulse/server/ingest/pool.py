"""The server's side of the ingest worker processes (``worker.py``).

``IngestWorkers`` starts ``count`` workers (``python -m hostpulse.server.ingest.worker``, a
fresh interpreter: nothing of the server's threads, store or sockets is inherited) and sends
each request to the worker of its host (a hash of the agent key's host id), so that worker's
caches of checked series tables hit. A worker that is still starting, was replaced, or has
``max_inflight`` requests already is not used: the caller checks the request itself
(``run`` returns None). A worker that dies fails its requests in flight with ``WorkerDied``
(the service answers 503 + Retry-After: nothing was stored) and is started again. The server
waits for its workers at startup (``START_TIMEOUT``). ``close`` closes the workers' stdin (they
exit) and kills one that does not within a second.
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
from typing import Any

from hostpulse.server.ingest.limits import IngestLimits
from hostpulse.server.ingest.worker import HEADER, HELLO, frame, limits_arg

logger = logging.getLogger(__name__)

RESTART_DELAY = 0.5
"""Seconds before a worker that exited is started again (no busy loop on a broken install)."""


START_TIMEOUT = 30
"""Seconds the server waits at startup for its workers (an interpreter start and imports)."""


class WorkerDied(Exception):
    """The worker handling the request exited before answering."""


class _Worker:
    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.pending: dict[int, asyncio.Future[tuple[Any, ...]]] = {}

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid


class IngestWorkers:
    def __init__(
        self, count: int, limits: IngestLimits, *, prepare: bool, max_inflight: int = 64
    ) -> None:
        self.limits = limits
        self.prepare = prepare
        self.max_inflight = max_inflight
        self.workers = [_Worker(i) for i in range(count)]
        self.restarts = 0
        self._ids = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._rr = itertools.count()

    def start(self) -> None:
        """Start every worker (in the background: requests are checked in this process until
        a worker says it is ready)."""
        for w in self.workers:
            self._launch(w, 0.0)

    async def wait_ready(self, seconds: float) -> bool:
        """Wait until every worker is ready (at most ``seconds``); whether they are."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not all(w.ready for w in self.workers):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _launch(self, w: _Worker, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._run_worker(w, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_worker(self, w: _Worker, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self._closing:
            return
        args = [limits_arg(self.limits), "1" if self.prepare else "0"]
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hostpulse.server.ingest.worker",
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            logger.error("cannot start an ingest worker: %s", exc)
            self._launch(w, RESTART_DELAY)
            return
        w.proc = proc
        assert proc.stdout is not None
        try:
            hello = await self._frame(proc.stdout)
            if hello != HELLO:
                raise ValueError(f"unexpected first frame {hello!r}")
            w.ready = True
            while True:
                message = await self._frame(proc.stdout)
                fut = w.pending.pop(message[0], None)
                if fut is not None and not fut.done():
                    fut.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, pickle.PickleError):
            pass
        finally:
            w.ready = False
            w.proc = None
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            if proc.stdin is not None:
                proc.stdin.close()
            lost, w.pending = w.pending, {}
            for fut in lost.values():
                if not fut.done():
                    fut.set_exception(WorkerDied())
            code = await proc.wait()
            if not self._closing:
                logger.error(
                    "ingest worker %d (pid %d) exited with %s; %d requests in flight answered "
                    "503; starting another",
                    w.slot,
                    proc.pid,
                    code,
                    len(lost),
                )
                self.restarts += 1
                self._launch(w, RESTART_DELAY)

    @staticmethod
    async def _frame(stream: asyncio.StreamReader) -> Any:
        head = await stream.readexactly(HEADER.size)
        return pickle.loads(await stream.readexactly(HEADER.unpack(head)[0]))

    def _pick(self, key: str | None) -> _Worker | None:
        n = len(self.workers)
        if n == 1:
            w = self.workers[0]
        elif key is None:
            w = self.workers[next(self._rr) % n]
        else:
            w = self.workers[zlib.crc32(key.encode()) % n]
        if not w.ready or len(w.pending) >= self.max_inflight:
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
        if w is None or w.proc is None or w.proc.stdin is None:
            return None
        rid = next(self._ids)
        fut: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        w.pending[rid] = fut
        try:
            stdin = w.proc.stdin
            stdin.write(frame((rid, now_ms, content_type, encoding, body)))
            try:
                await stdin.drain()
            except ConnectionError:
                raise WorkerDied() from None
            return await fut
        finally:
            w.pending.pop(rid, None)

    async def close(self) -> None:
        self._closing = True
        procs = [w.proc for w in self.workers if w.proc is not None]
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 1.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
