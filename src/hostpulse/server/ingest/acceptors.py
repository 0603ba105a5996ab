"""The server process's side of the ingest acceptor processes (``acceptor.py``).

``Acceptors`` starts ``count`` acceptors (``python -c`` running ``acceptor.main``, a fresh
interpreter), each with the listening socket, a channel for ingest requests and a socket for
connections handed over. From the channel it takes the acceptors' checked ingest requests and
answers each one as the in-process fast path would (``fastpath.handle``): the agent key
(``ingest_host``), then ``IngestService.ingest_answer``, then the request metrics. A
connection handed over is given to uvicorn's HTTP protocol, with the bytes the acceptor read
from it, as if uvicorn had accepted it.

An acceptor that exits is started again after ``RESTART_DELAY``; its connections are closed
with it (an agent sends again: what was stored is counted as duplicates). ``close`` closes
the channels (the acceptors exit at once) and kills one that has not exited within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from hostpulse.server.auth.ingest_guard import IngestDenied, ingest_host
from hostpulse.server.edge import NOSNIFF
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.fastpath import INGEST_PATH
from hostpulse.server.ingest.worker import frame, take_frames

logger = logging.getLogger(__name__)

RESTART_DELAY = 0.5
HANDOVER_BYTES = 1 << 20
"""Largest message on a handover socket: the bytes an acceptor read from a connection before
handing it over (at most one read of its event loop, 256 KB, and a partial request head)."""

_MAIN = "import sys; from hostpulse.server.ingest.acceptor import main; sys.exit(main(sys.argv))"
_JSON = (b"content-type", b"application/json")

ProtocolFactory = Callable[[], asyncio.Protocol]


class _Prefixed(asyncio.Protocol):
    """uvicorn's protocol for a connection handed over: ``data`` (read by the acceptor) is
    given to it first, then everything else as it arrives."""

    def __init__(self, inner: asyncio.Protocol, data: bytes) -> None:
        self.inner = inner
        self.data = data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)
        data, self.data = self.data, b""
        if data:
            self.inner.data_received(data)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Channel(asyncio.Protocol):
    """The server's end of one acceptor's channel."""

    def __init__(self, owner: Acceptors) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        for message in take_frames(self._buf):
            task = self.owner.loop.create_task(self._answer(message))
            self.owner.tasks.add(task)
            task.add_done_callback(self.owner.tasks.discard)

    async def _answer(self, message: tuple[Any, ...]) -> None:
        rid, started, authorization, size, result = message
        status = 500
        try:
            status, body, headers = await self.owner.answer(authorization, size, result)
        except Exception:  # the in-process path's 500: logged, the agent sends again
            logger.exception("ingest request from an acceptor failed")
            status, body, headers = _error(500, "Internal Server Error", None)
        finally:
            self.owner.observe(INGEST_PATH, status, time.monotonic() - started)
        self.send(frame((rid, status, body, headers)))

    def send(self, data: bytes) -> None:
        """Queue an answer; the answers of one loop turn (the requests one WAL sync made
        durable) are written together: one wake-up of the acceptor for all of them."""
        if not self._out:
            self.owner.loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class _Process(asyncio.SubprocessProtocol):
    def __init__(self, owner: Acceptors, slot: int) -> None:
        self.owner = owner
        self.slot = slot
        self.transport: asyncio.SubprocessTransport | None = None
        self.exited: asyncio.Future[None] = owner.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        self.owner.exited(self)

    def kill(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(ProcessLookupError):
                self.transport.kill()


class Acceptors:
    """``count`` acceptor processes on ``listener`` for the app whose state is ``app_state``;
    handed-over connections get ``protocol()`` (uvicorn's)."""

    def __init__(
        self,
        count: int,
        listener: socket.socket,
        app_state: Any,
        protocol: ProtocolFactory,
        config: dict[str, Any],
    ) -> None:
        self.count = count
        self.listener = listener
        self.app_state = app_state
        self.protocol = protocol
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.processes: list[_Process | None] = [None] * count
        self.channels: list[_Channel | None] = [None] * count
        self.handovers: list[socket.socket | None] = [None] * count
        self.tasks: set[asyncio.Task[Any]] = set()
        """Requests being answered, connections being handed to uvicorn."""
        self._spawning: set[asyncio.Task[None]] = set()
        self.restarts = 0
        self._closing = False

    @property
    def pids(self) -> list[int]:
        return [
            p.transport.get_pid()
            for p in self.processes
            if p is not None and p.transport is not None and not p.exited.done()
        ]

    def observe(self, path: str, status: int, seconds: float) -> None:
        metrics = getattr(self.app_state, "selfmetrics", None)
        if metrics is not None:
            metrics.observe(path, status, seconds)

    async def answer(
        self, authorization: bytes | None, size: int, result: tuple[Any, ...]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The status, JSON body and headers of the answer to one checked request."""
        try:
            host_id = await ingest_host(self.app_state, authorization)
        except IngestDenied as exc:
            return _error(exc.status, exc.reason, exc.headers)
        try:
            done = await self.app_state.hp.ingest.ingest_answer(result, size, only_host=host_id)
        except IngestError as exc:
            return _error(exc.status, exc.reason, exc.headers)
        body = orjson.dumps(
            {"accepted_samples": done.accepted, "duplicate_samples": done.duplicates}
        )
        return 200, body, [_JSON, NOSNIFF]

    # --- processes -----------------------------------------------------------------------------

    async def start(self) -> None:
        for slot in range(self.count):
            await self._spawn(slot)

    async def _spawn(self, slot: int) -> None:
        if self._closing:
            return
        chan_ours, chan_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        hand_ours, hand_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (hand_ours, hand_theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * HANDOVER_BYTES)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 * HANDOVER_BYTES)
        fds = (self.listener.fileno(), chan_theirs.fileno(), hand_theirs.fileno())
        try:
            _, proc = await self.loop.subprocess_exec(
                lambda: _Process(self, slot),
                sys.executable,
                "-c",
                _MAIN,
                *(str(fd) for fd in fds),
                json.dumps(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                pass_fds=fds,
            )
        except OSError as exc:
            logger.error("cannot start an ingest acceptor: %s", exc)
            for s in (chan_ours, chan_theirs, hand_ours, hand_theirs):
                s.close()
            self._later(slot)
            return
        finally:
            chan_theirs.close()
            hand_theirs.close()
        self.processes[slot] = proc
        chan_ours.setblocking(False)
        _, channel = await self.loop.connect_accepted_socket(lambda: _Channel(self), chan_ours)
        self.channels[slot] = channel
        hand_ours.setblocking(False)
        self.handovers[slot] = hand_ours
        self.loop.add_reader(hand_ours.fileno(), self._handed, hand_ours)

    def _later(self, slot: int) -> None:
        async def again() -> None:
            await asyncio.sleep(RESTART_DELAY)
            await self._spawn(slot)

        task = self.loop.create_task(again())
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    def _handed(self, sock: socket.socket) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, HANDOVER_BYTES, 4)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            logger.error("ingest acceptor handover: %s", exc)
            self.loop.remove_reader(sock.fileno())
            return
        if not fds:
            if not data:  # the acceptor's end closed
                self.loop.remove_reader(sock.fileno())
            return
        for extra in fds[1:]:
            socket.socket(fileno=extra).close()
        conn = socket.socket(fileno=fds[0])
        conn.setblocking(False)
        prefix = data[1:]
        task = self.loop.create_task(
            self.loop.connect_accepted_socket(lambda: _Prefixed(self.protocol(), prefix), conn)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def exited(self, proc: _Process) -> None:
        slot = proc.slot
        if proc.transport is not None:
            proc.transport.close()
        channel, self.channels[slot] = self.channels[slot], None
        if channel is not None and channel.transport is not None:
            channel.transport.close()
        hand, self.handovers[slot] = self.handovers[slot], None
        if hand is not None:
            self.loop.remove_reader(hand.fileno())
            hand.close()
        if self._closing:
            return
        logger.error("ingest acceptor %d exited; starting another", slot)
        self.restarts += 1
        self._later(slot)

    async def close(self) -> None:
        """Stop the acceptors (their connections close) once the requests they sent are
        answered (at most ``timeout`` seconds)."""
        self._closing = True
        for task in list(self._spawning):
            task.cancel()
        await asyncio.gather(*self._spawning, return_exceptions=True)
        for hand in self.handovers:
            if hand is not None:
                self.loop.remove_reader(hand.fileno())
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10.0)
        for channel in self.channels:
            if channel is not None and channel.transport is not None:
                channel.transport.close()  # the acceptor exits at the end of its channel
        for proc in self.processes:
            if proc is None or proc.exited.done():
                continue
            try:
                await asyncio.wait_for(asyncio.shield(proc.exited), 1.0)
            except TimeoutError:
                proc.kill()
                await proc.exited


def _error(
    status: int, reason: str, headers: dict[str, str] | None
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    out = [_JSON, NOSNIFF]
    if headers:
        out += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return status, orjson.dumps({"detail": reason}), out
