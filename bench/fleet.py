"""A fleet on one box: ``--hosts`` simulated hosts reporting every ``--interval`` seconds into one
``hostpulse server`` on the embedded store for ``--seconds``, with the default alert rules
(plus the benchmark's ``cpu_now`` rule to a webhook receiver) and ``--ws-clients`` dashboard
WebSocket clients subscribed to the fleet view.

Load: each host posts one snapshot per interval in its own request with its own agent key,
requests spread evenly over the interval, over ``--connections`` keep-alive connections (the
simulated hosts and requests of ``bench/alert_latency.py``; CPU capped at 85 %), or with
``--connections 0`` one connection a host, as agents connect (the server closes one idle for
its 5 s keep-alive: at a 5 s interval the next report comes just in time, and 3,000 hosts kept
3,000 connections open; at a longer ``--interval`` every report opens a new one). Every
``--breach-every`` seconds one host sends a snapshot with CPU at 97 % on a connection of its own.

Recorded:

- failed or refused requests (any answer >= 300 or a broken connection), target 0;
- ingest lag: time from a report being due to its 2xx (the snapshot is then durably stored),
  including any wait behind earlier requests on the same connection; P95, max, and how many
  took longer than one interval (target 0); beside it the P95 from the request written to the
  socket to its 2xx (the server alone), and how far the sender fell behind its own schedule
  (if it did, the client, not the server, was the limit); and in the resource table the P95
  of the reports due in each ``--sample-every`` seconds (a first-contact backlog that drains,
  or a steady state that does not);
- alert latency: breaching request written -> webhook received, P95 (target <= 2 s);
- WebSocket sample-to-client: a fleet frame's arrival at a client - the timestamp of the sample
  it shows (which the sender stamps when it writes the request), P95 over every host in every
  frame of every client (target <= 1 s);
- server RSS, open files, data-directory size and the WAL's share of it every
  ``--sample-every`` seconds, and their slope per minute after ``--warmup`` seconds (least
  squares). The head keeps every raw sample of the current 10-minute block window, so for the
  first ``HEAD_FILL_S`` (12 minutes) RSS and the WAL grow by design: only a warm-up at least
  that long (``--seconds 1800 --warmup 900``) shows whether they level off; after it they are a
  saw-tooth with a 10-minute period, while the blocks, the stored samples, keep growing by
  what was written. So the mean of each whole period after warm-up is printed too, and the
  growth per minute from the first period's mean to the last's (flat: about 0 for RSS, open
  files and the WAL; the blocks by their bytes per sample stored).

The requests are sent by ``--senders`` processes (each a share of the hosts and of the
connections, each connection an asyncio protocol on the process's own event loop, so that the
load generator is not the limit; they make their requests first and start together); the
WebSocket clients and the breaches run in this process. The CPU share of each is printed.
``--hosts`` takes a comma-separated list: the sizes are tried largest first and the run stops
at the first that meets every target ("the largest fleet that fits"), printing what limited
the ones that did not. ``server CPU ms per request after warm-up`` is the figure to compare
between builds on a loaded machine (wall-clock latencies there are noise).

    python bench/fleet.py --hosts 200 --seconds 120
    python bench/fleet.py --hosts 10000,5000,2000,1000 --seconds 600
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import struct
import sys
import tempfile
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RawClient,
    admin_headers,
    append_doc,
    bench_args,
    cpu_seconds,
    dir_size,
    enroll_all_async,
    our_server,
    own_cpu_seconds,
    percentile,
    varint,
    write_json,
)
from alert_latency import RULE, Fleet, Receiver, alerts_yml

from hostpulse.agent.delivery.body import gzip_request_for, request_prefix
from hostpulse.protocol import HostBatch, Snapshot
from hostpulse.protocol.live_pb2 import LiveFrame
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.model import SimHost
from hostpulse.sim.push import make_hosts
from hostpulse.store import WAL_DIR

INGEST = "/api/v1/ingest"
HEAD_FILL_S = 720
"""Seconds until the head holds as much as it ever will: it keeps every raw sample of the
current block window (10 minutes, aligned to the clock) and the previous one until compaction
(grace 60 s, then the next maintenance run, at most 60 s later); only then is the first
window's WAL dropped. RSS and the WAL are a saw-tooth with the window's period after that, and
the blocks (the stored samples, kept 7 days) grow with the samples written."""
PERIOD_S = 600
"""The store's block window (``block_ms``): after ``HEAD_FILL_S`` RSS and the WAL repeat with
this period, so their mean over any whole period is the same unless something grows."""


@dataclass
class Run:
    hosts: int
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)  # from the report's due time to its 2xx
    lag_t: list[float] = field(default_factory=list)  # each lag's due time, s after the start
    served_ms: list[float] = field(default_factory=list)  # written to the socket -> 2xx
    behind_s: float = 0.0  # the sender's worst delay against its own schedule
    ws_ms: list[float] = field(default_factory=list)
    ws_frames: int = 0
    ws_closed: list[str] = field(default_factory=list)
    alert_ms: list[float] = field(default_factory=list)
    breaches: int = 0
    breach_ms: list[float] = field(default_factory=list)  # a breach request: sent -> its 2xx
    notifications: dict[str, int] = field(default_factory=dict)  # "rule kind" -> received
    resources: list[tuple[float, float, int, int, int]] = field(default_factory=list)
    cpu_marks: list[tuple[float, float]] = field(default_factory=list)  # t, server CPU
    server_cpu: float = 0.0
    server_wait: float = 0.0  # seconds its threads were runnable but waited for a CPU
    own_cpu: float = 0.0  # this process: WebSocket clients, breaches, sampling
    senders_cpu: float = 0.0  # the sender processes together
    senders: int = 0
    seconds: float = 0.0
    samples_per_request: float = 0.0  # series per host: the samples one report stores


class _Link(asyncio.Protocol):
    """One TCP connection of a ``_Slot``: hands what it reads to the slot while it is the
    slot's current one (a link closed by its slot may still report afterwards)."""

    def __init__(self, slot: _Slot) -> None:
        self.slot = slot
        self.transport: asyncio.Transport | None = None
        self.answers = 0  # answers read on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.slot.link is self:
            self.slot.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.slot.link is self:
            self.slot.lost(exc)


class _Slot:
    """One of a sender's keep-alive connections: its requests go one at a time, in order, as
    an agent sends them, and each answer is parsed as its bytes arrive, with no task, lock or
    stream per request (asyncio streams and a task per request cost the senders about 170 us
    of CPU a request, a third of a core at 10,000 hosts, taken from the server on the same two
    cores). A connection the server closed while it was kept alive (it read nothing of the
    request) is opened again and the request sent once more, as agents do."""

    def __init__(self, feeder: _Feeder) -> None:
        self.feeder = feeder
        self.queue: deque[tuple[bytes, float, bool]] = deque()  # request, due, resent
        self.link: _Link | None = None
        self.connecting = False
        self.buf = bytearray()
        self.inflight: tuple[bytes, float, float, bool] | None = None  # + written, resent

    def send(self, raw: bytes, due: float) -> None:
        self.queue.append((raw, due, False))
        if self.inflight is None:
            self._next()

    def _next(self) -> None:
        if self.inflight is not None or not self.queue:
            return
        link = self.link
        if link is None or link.transport is None:
            if not self.connecting:
                self.connecting = True
                self.feeder.tasks.add(task := asyncio.ensure_future(self._connect()))
                task.add_done_callback(self.feeder.tasks.discard)
            return
        raw, due, resent = self.queue.popleft()
        self.inflight = (raw, due, time.perf_counter(), resent)
        link.transport.write(raw)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        link = _Link(self)
        try:
            await loop.create_connection(lambda: link, self.feeder.host, self.feeder.port)
        except OSError as exc:
            self.connecting = False
            while self.queue:
                self.queue.popleft()
                self.feeder.failed(f"connect: {exc!r}")
            return
        self.connecting = False
        self.link = link
        self.buf.clear()
        self._next()

    def received(self, data: bytes) -> None:
        self.buf += data
        while self.inflight is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:  # the server's answers all have a length: anything else is a failure
                self.feeder.failed(f"an answer without content-length: {head[:200]!r}")
                self.inflight = None
                self._drop()
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            whole = end + 4 + length
            if len(self.buf) < whole:
                return
            body = bytes(self.buf[end + 4 : whole])
            del self.buf[:whole]
            _, due, written, _ = self.inflight
            self.inflight = None
            assert self.link is not None
            self.link.answers += 1
            self.feeder.answered(int(head[9:12]), body, due, written)
            if b"\r\nconnection: close" in head:
                self._drop()
            self._next()

    def _drop(self) -> None:
        link, self.link = self.link, None
        if link is not None and link.transport is not None:
            link.transport.close()
        self.buf.clear()
        self._next()

    def lost(self, exc: Exception | None) -> None:
        link, self.link = self.link, None
        pending, self.inflight = self.inflight, None
        if pending is not None:
            raw, due, _, resent = pending
            if link is not None and link.answers and not self.buf and not resent:
                self.queue.appendleft((raw, due, True))  # closed while kept alive: again
                self.buf.clear()
                self._next()
                return
            self.feeder.failed(f"connection closed: {exc!r}")
        self.buf.clear()
        self._next()

    def close(self) -> None:
        link, self.link = self.link, None
        if link is not None and link.transport is not None:
            link.transport.close()


class _Feeder:
    """A sender's connections and what their answers recorded."""

    def __init__(self, url: str, conns: int, run: Run, start_at: float) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.since = time.time() - time.perf_counter() - start_at  # perf_counter -> run time
        self.host, self.port = host, int(port)
        self.run = run
        self.tasks: set[asyncio.Future[None]] = set()
        self.slots = [_Slot(self) for _ in range(conns)]
        self.outstanding = 0
        self.idle = asyncio.Event()

    def send(self, slot: int, raw: bytes) -> None:
        self.outstanding += 1
        self.idle.clear()
        self.slots[slot].send(raw, time.perf_counter())

    def answered(self, status: int, body: bytes, due: float, written: float) -> None:
        now = time.perf_counter()
        self.run.lag_ms.append((now - due) * 1000)
        self.run.lag_t.append(due + self.since)
        self.run.served_ms.append((now - written) * 1000)
        if status >= 300:
            self.run.failures.append(f"{status} {body[:200]!r}")
        self._done()

    def failed(self, why: str) -> None:
        self.run.failures.append(why)
        self._done()

    def _done(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.idle.set()


async def feed(
    url: str,
    fleet: AgentRequests,
    interval: float,
    conns: int,
    stop: asyncio.Event,
    run: Run,
    offset: float = 0.0,
    start_at: float | None = None,
) -> None:
    """Every host once per interval, requests spread evenly (starting ``offset`` of a gap
    late, so that several senders interleave); each answer's lag recorded (from when the
    request was due, so a wait behind earlier requests on its connection counts) with when it
    was due (seconds after wall-clock ``start_at``, default now)."""
    feeder = _Feeder(url, conns, run, time.time() if start_at is None else start_at)
    gap = interval / len(fleet.hosts)
    start = time.monotonic() + offset * gap
    while not stop.is_set():
        run.behind_s = max(run.behind_s, time.monotonic() - (start + run.sent * gap))
        ts = (time.time_ns() // 10_000_000) * 10  # whole 10 ms: breaches use other ms
        feeder.send(run.sent % conns, fleet.request(run.sent % len(fleet.hosts), ts))
        run.sent += 1
        delay = start + run.sent * gap - time.monotonic()
        if delay > 0:  # at most one gap: a plain sleep (wait_for costs a task per request)
            await asyncio.sleep(delay)
    if feeder.outstanding:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feeder.idle.wait(), 60)
    for _ in range(feeder.outstanding):  # not answered within a minute: counted as failed
        run.failures.append("no answer within 60 s of the end of the run")
    for slot in feeder.slots:
        slot.close()
    for task in list(feeder.tasks):
        task.cancel()


def _stored(data: bytes, final: bool = False) -> bytes:
    """``data`` as one stored (uncompressed) deflate block, at a byte boundary."""
    return (
        (b"\x01" if final else b"\x00") + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data
    )


def _deflated(data: bytes, level: int) -> bytes:
    """``data`` as non-final deflate blocks ending on a byte boundary (a sync flush), so that
    other blocks can follow: how the agent compresses a record's host and series table."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    return deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)


class AgentRequests:
    """The senders' requests, each what a real agent sends for its host: its own key, a fresh
    timestamp and sequence, the host's series table and one snapshot of its values, the
    protobuf bytes ``SerializeToString`` gives, in one gzip member compressed like the
    agent's (``agent/delivery/record.py``, ``body.py``: the host and series table at level 6,
    the snapshot's values at level 1). ``ROWS`` snapshots of values per host are computed
    and compressed up front (CPU capped at 85 %) and reported in turn; only the few bytes that
    change (timestamp, sequence, lengths) go into stored deflate blocks between them, and the
    HTTP head up to the Content-Length is built once per host. A request then costs the
    sender a CRC-32 and a few concatenations: 105 us of CPU before (a snapshot message, a
    ``gzip.compress`` of the whole batch, the headers), about 10 us now (500 hosts)."""

    ROWS = 4

    def __init__(
        self, hosts: list[SimHost], interval: float, keys: dict[str, str], authority: str
    ) -> None:
        self.hosts = hosts
        self.seq = [0] * len(hosts)
        start = time.time_ns() // 1_000_000
        stamps = np.array([start + int(k * interval * 1000) for k in range(self.ROWS)])
        self.heads: list[bytes] = []  # host + series table, serialized
        self.blocks: list[bytes] = []  # ... and compressed
        self.rows: list[list[tuple[bytes, bytes]]] = []  # ROWS x (series_index + values, deflated)
        self.http: list[bytes] = []
        self._crc: list[dict[int, int]] = []  # per host: batch size -> CRC-32 of prefix + head
        for h in hosts:
            head = HostBatch(host=host_message(h, interval), series=series_defs(h))
            raw_head = head.SerializeToString()
            self.heads.append(raw_head)
            self.blocks.append(_deflated(raw_head, 6))
            values = h.block(stamps.astype(np.int64))
            busy = h.series.index(("cpu_busy_percent", ()))
            values[:, busy] = np.minimum(values[:, busy], 85.0)
            index = range(len(h.series))
            rows = []
            for row in values:
                raw = Snapshot(series_index=index, values=row.tolist()).SerializeToString()
                rows.append((raw, _deflated(raw, 1)))
            self.rows.append(rows)
            head_lines = [
                f"POST {INGEST} HTTP/1.1",
                f"Host: {authority}",
                "Content-Type: application/x-protobuf",
                "Content-Encoding: gzip",
                f"Authorization: Bearer {keys[h.host_id]}",
                "Content-Length: ",
            ]
            self.http.append("\r\n".join(head_lines).encode())
            self._crc.append({})

    def request(self, i: int, ts_ms: int) -> bytes:
        """Host ``i``'s next report, stamped ``ts_ms``: the whole HTTP request."""
        seq = self.seq[i]
        self.seq[i] = seq + 1
        raw_row, row_blocks = self.rows[i][seq % self.ROWS]
        # the snapshot's fields in field order (timestamp 1, series_index 2, values 3,
        # sequence 6), as SerializeToString writes them (a zero sequence is left out)
        stamp = b"\x08" + varint(ts_ms)
        tail = b"\x30" + varint(seq) if seq else b""
        snap_size = len(stamp) + len(raw_row) + len(tail)
        lead = b"\x1a" + varint(snap_size) + stamp  # HostBatch.snapshots, then the timestamp
        head = self.heads[i]
        size = len(head) + len(lead) + len(raw_row) + len(tail)
        crcs = self._crc[i]
        crc = crcs.get(size)
        if crc is None:
            crc = crcs[size] = zlib.crc32(head, zlib.crc32(request_prefix(size)))
        crc = zlib.crc32(tail, zlib.crc32(raw_row, zlib.crc32(lead, crc)))
        blocks = (self.blocks[i], _stored(lead), row_blocks, _stored(tail, final=True))
        stream = b"".join((b"\x01\x78\x01", *blocks, b"\0" * 4))  # a record's form
        body = gzip_request_for(stream, (crc, size))
        assert body is not None
        return b"".join((self.http[i], str(len(body)).encode(), b"\r\n\r\n", body))


@dataclass
class Sent:
    """What one sender process reports back."""

    sent: int
    failures: list[str]
    lag_ms: list[float]
    lag_t: list[float]
    served_ms: list[float]
    behind_s: float
    cpu_s: float


def sender(
    url: str,
    n: int,
    part: int,
    parts: int,
    keys: dict[str, str],
    args: Any,
    ready: Any,
    start: Any,
    out: Any,
) -> None:
    """One sender process: the hosts ``part::parts`` of the fleet of ``n`` over
    ``connections / parts`` connections for ``args.seconds``. Once its requests are made it
    says so on ``ready`` and takes the wall-clock start from the ``start`` queue: every
    sender starts at the same moment, also when making the requests took longer than the
    main process waited (30 s at 10,000 hosts: the run then measured the server idle)."""

    async def go() -> Run:
        hosts = make_hosts(n, seed=13)[part::parts]
        authority = url.removeprefix("http://")
        fleet = AgentRequests(hosts, args.interval, keys, authority)
        run = Run(len(hosts))
        stop = asyncio.Event()
        ready.put(part)
        start_at = await asyncio.to_thread(start.get, True, 600)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        asyncio.get_running_loop().call_later(args.seconds, stop.set)
        conns = len(hosts) if args.connections == 0 else max(1, args.connections // parts)
        cpu0 = own_cpu_seconds()  # the sending only, not the set-up before it
        await feed(url, fleet, args.interval, conns, stop, run, part / parts, start_at)
        run.own_cpu = own_cpu_seconds() - cpu0
        return run

    try:  # the server's event loop too: less CPU per request than asyncio's own
        import uvloop
    except ImportError:  # uvloop ships with uvicorn[standard]
        run = asyncio.run(go())
    else:
        run = uvloop.run(go())
    out.put(
        Sent(
            run.sent,
            run.failures,
            run.lag_ms,
            run.lag_t,
            run.served_ms,
            run.behind_s,
            run.own_cpu,
        )
    )


async def watch(url: str, token: str, stop: asyncio.Event, run: Run) -> None:
    """One dashboard client on the fleet view (protobuf frames)."""
    ws_url = url.replace("http://", "ws://") + "/api/v1/ws?fleet=true"
    auth = {"authorization": f"Bearer {token}"}  # the server takes no token in the URL
    async with websockets.connect(ws_url, max_size=None, additional_headers=auth) as ws:
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            except websockets.ConnectionClosed as exc:
                run.ws_closed.append(repr(exc))
                return
            now_ms = time.time_ns() / 1e6
            if not isinstance(msg, bytes):
                continue
            frame = LiveFrame.FromString(msg)
            if frame.WhichOneof("kind") == "fleet":
                run.ws_frames += 1
                run.ws_ms.extend(now_ms - h.timestamp_ms for h in frame.fleet.hosts)


async def breaches(
    url: str, fleet: Fleet, every: float, rx: Receiver, stop: asyncio.Event, run: Run
) -> None:
    """Every ``every`` s one host (a different one each time) breaches on a connection of its
    own (opened for it: an idle keep-alive connection is closed by the server after 5 s); the
    latency to the webhook is taken when the notification arrives."""
    host, port = url.removeprefix("http://").split(":")
    sent: dict[str, int] = {}
    i = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set() or i >= len(fleet.hosts):
            break
        ts = (time.time_ns() // 10_000_000) * 10 + 3
        raw = fleet.request(f"{host}:{port}", i, ts, 97.0)
        conn = RawClient(host, int(port))
        t0 = time.time_ns()
        try:
            status, body = await conn.send(raw)
        finally:
            await conn.close()
        run.breach_ms.append((time.time_ns() - t0) / 1e6)
        if status >= 300:
            run.failures.append(f"breach {status} {body[:200]!r}")
        else:
            sent[fleet.hosts[i].host_id] = t0
        i += 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with rx.got:
            if all((RULE, h) in rx.arrivals for h in sent):
                break
        await asyncio.sleep(0.1)
    run.breaches = len(sent)
    with rx.got:
        run.notifications = {f"{r} {k}": c for (r, k), c in sorted(rx.received.items())}
    run.alert_ms = [
        (rx.arrivals[(RULE, h)] - t0) / 1e6 for h, t0 in sent.items() if (RULE, h) in rx.arrivals
    ]


async def resources(pid: int, data: Path, every: float, stop: asyncio.Event, run: Run) -> None:
    proc = psutil.Process(pid)
    start = time.monotonic()
    while True:
        run.cpu_marks.append((time.monotonic() - start, cpu_seconds(pid)))
        for attempt in range(3):  # a WAL segment dropped between listing and stat: again
            try:
                sizes = dir_size(data), dir_size(data / "store" / WAL_DIR)  # store_url
            except FileNotFoundError:
                if attempt == 2:
                    raise
            else:
                break
        run.resources.append(
            (time.monotonic() - start, proc.memory_info().rss / 2**20, proc.num_fds(), *sizes)
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return


async def one_size(args: Any, n: int, url: str, pid: int, data: Path, rx: Receiver) -> Run:
    run = Run(n)
    with rx.got:  # the same host ids breached in the previous size: their arrivals are old
        rx.arrivals.clear()
        rx.received.clear()
    hosts = make_hosts(n, seed=13)
    fleet = Fleet(hosts, args.interval, await enroll_all_async(url, [h.host_id for h in hosts]))
    run.samples_per_request = sum(len(h.series) for h in hosts) / n
    token = admin_headers(url)["authorization"].removeprefix("Bearer ")
    parts = args.senders or max(1, min(8, n // 2000 + 1))
    ctx = multiprocessing.get_context("spawn")
    results, ready, start = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=sender, args=(url, n, k, parts, fleet.keys, args, ready, start, results))
        for k in range(parts)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # each has made its requests
        await asyncio.to_thread(ready.get, True, 600)
    start_at = time.time() + 0.5
    for _ in procs:
        start.put(start_at)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    stop = asyncio.Event()
    cpu0, own0, t0 = cpu_seconds(pid), own_cpu_seconds(), time.monotonic()
    wait0 = run_queue_seconds(pid)
    tasks = [
        asyncio.create_task(breaches(url, fleet, args.breach_every, rx, stop, run)),
        asyncio.create_task(resources(pid, data, args.sample_every, stop, run)),
        *(asyncio.create_task(watch(url, token, stop, run)) for _ in range(args.ws_clients)),
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.seconds)
    stop.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    for d in done:
        if isinstance(d, BaseException):
            run.failures.append(f"task: {d!r}")
    run.seconds = time.monotonic() - t0
    run.server_cpu = cpu_seconds(pid) - cpu0
    run.server_wait = run_queue_seconds(pid) - wait0
    run.own_cpu = own_cpu_seconds() - own0
    run.cpu_marks.append((run.seconds, cpu_seconds(pid)))
    for _ in procs:
        got: Sent = await asyncio.to_thread(results.get, True, 120)
        run.sent += got.sent
        run.failures += got.failures
        run.lag_ms += got.lag_ms
        run.lag_t += got.lag_t
        run.served_ms += got.served_ms
        run.behind_s = max(run.behind_s, got.behind_s)
        run.senders_cpu += got.cpu_s
    for p in procs:
        p.join(30)
    run.senders = parts
    return run


def run_queue_seconds(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (the second field of
    /proc/PID/task/TID/schedstat, in ns): a server that answers slowly at a low CPU share while
    this grows is starved by other processes, not waiting on its own locks or disk."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def cpu_per_request(marks: list[tuple[float, float]], warmup: float, rate: float) -> float:
    """Server CPU milliseconds per request from the first mark after ``warmup`` to the end
    (first contact and start-up excluded), at ``rate`` requests a second: the figure to
    compare between builds on a loaded machine, where wall-clock latencies are noise."""
    after = [m for m in marks if m[0] >= warmup]
    if len(after) < 2 or after[-1][0] <= after[0][0] or rate <= 0:
        return float("nan")
    return 1000 * (after[-1][1] - after[0][1]) / ((after[-1][0] - after[0][0]) * rate)


def slope_per_min(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    t = np.array([p[0] for p in points])
    v = np.array([p[1] for p in points])
    return float(np.polyfit(t, v, 1)[0] * 60)


Sample = tuple[float, float, int, int, int]  # t s, RSS MB, open files, data dir, WAL bytes


def whole_periods(res: list[Sample], warmup: float, period: float = PERIOD_S) -> list[list[Sample]]:
    """The samples of each whole ``period`` after ``warmup``: back to back from the first
    sample at or after it, and one more ending with the run when the last of those does not.
    The two may overlap: the mean of a periodic curve over a whole period does not depend on
    where the period starts, so two such means differ only by what grew between their starts
    (a least-squares slope over part of a saw-tooth period does not have that property)."""
    after = [r for r in res if r[0] >= warmup]
    if len(after) < 2:
        return []
    step = (after[-1][0] - after[0][0]) / (len(after) - 1)
    per = max(1, round(period / step))  # samples a period
    out = [after[k : k + per] for k in range(0, len(after) - per + 1, per)]
    if out and out[-1][-1] is not after[-1]:
        out.append(after[-per:])
    return out


def period_figures(run: Run, warmup: float) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Per whole period after warm-up the mean (and RSS's range) of each resource; and the
    growth per minute from the first period's mean to the last's, with the blocks' growth
    per sample stored (the data directory without the WAL: ~1.9 bytes a raw sample with its
    rollups when nothing but the samples grows)."""
    rows = []
    for ps in whole_periods(run.resources, warmup):
        rss = [p[1] for p in ps]
        rows.append(
            {
                "from_s": round(ps[0][0]),
                "to_s": round(ps[-1][0]),
                "rss_mb_mean": float(np.mean(rss)),
                "rss_mb_min": min(rss),
                "rss_mb_max": max(rss),
                "open_files_mean": float(np.mean([p[2] for p in ps])),
                "data_dir_mb_mean": float(np.mean([p[3] for p in ps])) / 2**20,
                "wal_mb_mean": float(np.mean([p[4] for p in ps])) / 2**20,
                "blocks_mb_mean": float(np.mean([p[3] - p[4] for p in ps])) / 2**20,
            }
        )
    nan = float("nan")
    trend = dict.fromkeys(("rss_mb", "open_files", "data_dir_mb", "wal_mb", "blocks_mb"), nan)
    trend["blocks_bytes_per_sample"] = nan
    if len(rows) >= 2 and rows[-1]["from_s"] > rows[0]["from_s"]:
        minutes = (rows[-1]["from_s"] - rows[0]["from_s"]) / 60
        for k in ("rss_mb", "open_files", "data_dir_mb", "wal_mb", "blocks_mb"):
            key = k + "_mean"
            trend[k] = (rows[-1][key] - rows[0][key]) / minutes
        samples_per_min = 60 * run.sent / max(run.seconds, 1e-9) * run.samples_per_request
        if samples_per_min > 0:
            trend["blocks_bytes_per_sample"] = trend["blocks_mb"] * 2**20 / samples_per_min
    return rows, trend


def verdict(run: Run, args: Any) -> tuple[dict[str, Any], list[str]]:
    """The figures of a run and what missed its target (empty: it fits)."""
    after = [r for r in run.resources if r[0] >= args.warmup]
    periods, trend = period_figures(run, args.warmup)
    late = sum(1 for x in run.lag_ms if x > args.interval * 1000)
    lags, dues = np.array(run.lag_ms), np.array(run.lag_t)
    fig: dict[str, Any] = {
        "hosts": run.hosts,
        "seconds": round(run.seconds, 1),
        "requests": run.sent,
        "failed_requests": len(run.failures),
        "ingest_lag_p95_ms": percentile(run.lag_ms, 0.95),
        "ingest_lag_max_ms": max(run.lag_ms, default=float("nan")),
        "server_answer_p95_ms": percentile(run.served_ms, 0.95),
        "requests_slower_than_interval": late,
        "sender_behind_schedule_s": run.behind_s,
        "alert_p95_ms": percentile(run.alert_ms, 0.95),
        "alerts_missing": run.breaches - len(run.alert_ms),
        "breach_answer_p95_ms": percentile(run.breach_ms, 0.95),
        "notifications_received": run.notifications,
        "ws_sample_to_client_p95_ms": percentile(run.ws_ms, 0.95),
        "ws_frames": run.ws_frames,
        "ws_closed": len(run.ws_closed),
        "server_cpu_percent": 100 * run.server_cpu / run.seconds,
        "server_cpu_ms_per_request": 1000 * run.server_cpu / max(run.sent, 1),
        "server_cpu_ms_per_request_after_warmup": cpu_per_request(
            run.cpu_marks, args.warmup, run.sent / max(run.seconds, 1e-9)
        ),
        "server_run_queue_percent": 100 * run.server_wait / run.seconds,
        "bench_cpu_percent": 100 * run.own_cpu / run.seconds,
        "senders": run.senders,
        "senders_cpu_percent": 100 * run.senders_cpu / run.seconds,
        "rss_mb_slope_per_min": slope_per_min([(r[0], r[1]) for r in after]),
        "open_files_slope_per_min": slope_per_min([(r[0], r[2]) for r in after]),
        "data_dir_mb_slope_per_min": slope_per_min([(r[0], r[3] / 2**20) for r in after]),
        "wal_mb_slope_per_min": slope_per_min([(r[0], r[4] / 2**20) for r in after]),
        "warmup_covers_head": args.warmup >= HEAD_FILL_S,
        "periods": periods,
        "period_growth_per_min": trend,
        "resources": [
            {
                "t_s": round(t),
                "rss_mb": round(rss, 1),
                "open_files": fds,
                "data_dir_bytes": size,
                "wal_bytes": wal,
                "lag_p95_ms": lag_p95_before(lags, dues, t, args.sample_every),
            }
            for t, rss, fds, size, wal in run.resources
        ],
    }
    missed = []
    if run.failures:
        missed.append(f"{len(run.failures)} failed requests (first: {run.failures[0]})")
    if late:
        why = ""
        if args.connections and fig["server_answer_p95_ms"] < args.interval * 1000:
            why = (
                f" (written -> 2xx P95 {fig['server_answer_p95_ms']:.0f} ms: they waited behind "
                "earlier requests on their connection; more --connections spread them)"
            )
        missed.append(f"{late} requests took longer than one interval{why}")
    if run.behind_s > args.interval:
        missed.append(f"the sender fell {run.behind_s:.1f} s behind (client-limited)")
    if not run.alert_ms or fig["alert_p95_ms"] > 2000 or fig["alerts_missing"]:
        missed.append(
            f"alert P95 {fig['alert_p95_ms']:.0f} ms, {fig['alerts_missing']} not delivered"
        )
    if not run.ws_ms or fig["ws_sample_to_client_p95_ms"] > 1000 or run.ws_closed:
        missed.append(
            f"WebSocket P95 {fig['ws_sample_to_client_p95_ms']:.0f} ms, "
            f"{len(run.ws_closed)} clients closed"
        )
    return fig, missed


def lag_p95_before(lags: np.ndarray, dues: np.ndarray, t: float, every: float) -> float:
    """The ingest lag P95 of the reports due in the ``every`` seconds before ``t`` (NaN when
    none): whether late answers were a moment (first contact) or the steady state."""
    window = lags[(dues >= t - every) & (dues < t)]
    return float(np.percentile(window, 95)) if window.size else float("nan")


def lines_of(fig: dict[str, Any], missed: list[str]) -> list[str]:
    res = fig["resources"]
    out = [
        f"{fig['hosts']} hosts for {fig['seconds']:.0f} s: {fig['requests']:,} requests, "
        f"{fig['failed_requests']} failed; ingest lag P95 {fig['ingest_lag_p95_ms']:.1f} ms, max "
        f"{fig['ingest_lag_max_ms']:.1f} ms, {fig['requests_slower_than_interval']} slower than "
        f"one interval; sender behind schedule at most {fig['sender_behind_schedule_s']:.2f} s; "
        f"request written -> 2xx P95 {fig['server_answer_p95_ms']:.1f} ms",
        f"  alert P95 {fig['alert_p95_ms']:.1f} ms ({fig['alerts_missing']} not delivered; "
        f"the breaching request's own answer P95 {fig['breach_answer_p95_ms']:.1f} ms; "
        "notifications received: "
        + (", ".join(f"{k} {c}" for k, c in fig["notifications_received"].items()) or "none")
        + "); "
        f"WebSocket sample-to-client P95 {fig['ws_sample_to_client_p95_ms']:.1f} ms over "
        f"{fig['ws_frames']} frames ({fig['ws_closed']} clients closed)",
        f"  server CPU {fig['server_cpu_percent']:.0f} % of a core "
        f"({fig['server_cpu_ms_per_request']:.2f} ms per request, "
        f"{fig['server_cpu_ms_per_request_after_warmup']:.2f} after warm-up), and "
        f"{fig['server_run_queue_percent']:.0f} % waiting for one (runnable, not running); "
        f"this script (WebSocket clients, breaches) {fig['bench_cpu_percent']:.0f} %, its "
        f"{fig['senders']} sender processes {fig['senders_cpu_percent']:.0f} %",
        "  t s   RSS MB   open files   data dir MB   of it WAL MB   lag P95 ms (reports due "
        "in the interval before)",
        *(
            f"  {r['t_s']:>4} {r['rss_mb']:>8.1f} {r['open_files']:>12} "
            f"{r['data_dir_bytes'] / 2**20:>13.1f} {r['wal_bytes'] / 2**20:>14.1f} "
            f"{r['lag_p95_ms']:>12.1f}"
            for r in res
        ),
        f"  slope after warm-up, per minute: RSS {fig['rss_mb_slope_per_min']:+.2f} MB, open "
        f"files {fig['open_files_slope_per_min']:+.2f}, data dir "
        f"{fig['data_dir_mb_slope_per_min']:+.2f} MB (WAL {fig['wal_mb_slope_per_min']:+.2f} MB)",
        *period_lines(fig),
        *(
            []
            if fig["warmup_covers_head"]
            else [
                f"  (warm-up under {HEAD_FILL_S} s: the head still fills with the first block "
                "window's raw samples and the WAL is not yet dropped, so RSS and the data "
                "directory grow by design; these slopes say nothing about a leak)"
            ]
        ),
        "  meets every target" if not missed else "  MISSES: " + "; ".join(missed),
    ]
    return out


def period_lines(fig: dict[str, Any]) -> list[str]:
    """The whole-period means after warm-up and the growth from the first to the last."""
    rows, g = fig["periods"], fig["period_growth_per_min"]
    if not rows:
        return [f"  (no whole {PERIOD_S} s period after the warm-up: no period means)"]
    out = [
        f"  mean over each whole {PERIOD_S} s period after warm-up (the head's saw-tooth period):",
        "  from s  to s  RSS MB (min-max)       open files  data dir MB  WAL MB  blocks MB",
        *(
            f"  {r['from_s']:>6} {r['to_s']:>5}  {r['rss_mb_mean']:>7.1f} "
            f"({r['rss_mb_min']:.0f}-{r['rss_mb_max']:.0f}) {r['open_files_mean']:>12.1f} "
            f"{r['data_dir_mb_mean']:>12.1f} {r['wal_mb_mean']:>7.1f} {r['blocks_mb_mean']:>10.1f}"
            for r in rows
        ),
    ]
    if len(rows) < 2:
        out.append("  (one period: run longer than the warm-up plus a period for its growth)")
        return out
    out.append(
        f"  growth of the period means, per minute: RSS {g['rss_mb']:+.2f} MB, open files "
        f"{g['open_files']:+.2f}, WAL {g['wal_mb']:+.2f} MB, blocks {g['blocks_mb']:+.2f} MB "
        f"({g['blocks_bytes_per_sample']:.2f} bytes a sample stored; flat: RSS, open files "
        "and WAL near 0, the blocks only by the samples' compressed size)"
    )
    return out


FD_SPARE = 1024
"""Open files beyond one a host that the server may need with ``--connections 0`` (SQLite, the
WAL, the dashboards' WebSockets, the breaches' and the webhook's connections)."""


def raise_open_files(need: int) -> None:
    """Raise this process's soft open-file limit to ``need`` (the server and the senders
    inherit it); exit when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(
            f"--connections 0 needs {need} open files (a connection a host), over the hard "
            f"limit {hard}: raise it (ulimit -Hn) or give --connections"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def main() -> None:
    ap = bench_args(__doc__)
    ap.add_argument("--hosts", default="200", help="fleet size, or sizes to try: 10000,5000")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--ws-clients", type=int, default=10)
    ap.add_argument(
        "--connections",
        type=int,
        default=200,
        help="in all, over the senders; below the server's max_pending (256), or a request "
        "beyond it (a breach on its own connection) is refused with 503. 0: one a host, as "
        "agents connect (the open-file limit is raised for it)",
    )
    ap.add_argument(
        "--senders",
        type=int,
        default=0,
        help="sender processes (0: one per 2,000 hosts and one more, at most 8)",
    )
    ap.add_argument("--breach-every", type=float, default=5.0)
    ap.add_argument("--sample-every", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the slope counts")
    ap.add_argument(
        "--server-src",
        type=Path,
        default=None,
        help="run the server from another source tree (e.g. an older commit's src) under the "
        "same load, for an A/B of its CPU per request",
    )
    args = ap.parse_args()
    sizes = sorted((int(x) for x in args.hosts.split(",")), reverse=True)
    if args.connections == 0:
        raise_open_files(sizes[0] + FD_SPARE)
    results = []
    lines: list[str] = []
    rx = Receiver()
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
                root = Path(tmp)
                cfg = alerts_yml(root / "alerts.yml", rx.url)
                data = root / "data"
                with our_server(
                    data,
                    root / "server.log",
                    "--alerts-config",
                    str(cfg),
                    src=args.server_src,
                ) as (
                    url,
                    proc,
                ):
                    run = asyncio.run(one_size(args, n, url, proc.pid, data, rx))
            fig, missed = verdict(run, args)
            results.append({**fig, "missed": missed})
            out = lines_of(fig, missed)
            print("\n".join(out), flush=True)
            lines += out
            if not missed:
                break
    finally:
        rx.stop()
    fits = [r["hosts"] for r in results if not r["missed"]]
    lines.append(
        f"largest fleet that meets every target: {fits[0]} hosts"
        if fits
        else f"no size tried ({args.hosts}) meets every target"
    )
    print(lines[-1])
    if args.json is not None:
        write_json(args.json, {"runs": results, "largest_fitting": fits[0] if fits else None})
    if not args.no_doc:
        append_doc("Fleet", "python " + " ".join(sys.argv), "```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main()
