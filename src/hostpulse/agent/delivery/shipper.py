"""Sends spooled snapshots to the server: the snapshot sink behind ``--server``.

``put`` appends the snapshot to the spool and returns (it never waits for the network). One
sender thread reads the oldest pending records in bounded batches (plus the newest few, so the
live view stays current while a backlog drains), merges snapshots that share a host and series
table into one ``HostBatch``, and POSTs an ``IngestRequest`` (protobuf, gzip, bearer key):

- 2xx: the records leave the spool (counted ``sent``);
- 429 / 503 with ``Retry-After``: the same body again after at least that long;
- 5xx, 429/503 without the header, 401 (no valid agent key yet: enroll or re-enroll the host,
  the snapshots wait in the spool), connection errors and timeouts: the same body again after an
  exponential, jittered backoff (1 s doubling to 60 s by default), counted ``retried``; with
  several server URLs, connection errors, timeouts and 5xx without ``Retry-After`` first send
  the same body to the next URL at once (``failover.py``);
- any other status: never resent; logged with the server's reason, counted ``rejected``.

A second thread fsyncs the spool after appends, at most once per ``fsync_interval``. ``close``
tries to deliver what is pending for a bounded time, then syncs and closes the spool: nothing
pending is lost, it is sent at the next start.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError

from hostpulse.agent.delivery.body import gzip_request_for
from hostpulse.agent.delivery.failover import Failover
from hostpulse.agent.delivery.record import RecordEncoder, decode_record
from hostpulse.agent.delivery.retry import Backoff, jitter_after, parse_retry_after
from hostpulse.agent.delivery.settings import ShipperSettings
from hostpulse.agent.delivery.spool import Spool, SpooledRecord, SpoolError
from hostpulse.agent.delivery.transport import HttpTransport, Transport, TransportError, ingest_url
from hostpulse.agent.selfmetrics import DeliveryStats, LatencyTracker
from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, HostBatch, IngestRequest

logger = logging.getLogger(__name__)

USER_AGENT = "hostpulse-agent"
IDLE_SYNC = 10.0
"""Seconds the sender and the spool's sync thread sleep when nothing is appended."""
CHECKSUMS_KEPT = 64
"""Request checksums of the newest records kept for their gzip bodies (``put``)."""


def build_request(records: list[SpooledRecord]) -> IngestRequest:
    """One IngestRequest; snapshots of the same host and series table share one HostBatch."""
    groups: dict[bytes, HostBatch] = {}
    for rec in records:
        batch = decode_record(rec.payload)
        head = HostBatch()
        head.CopyFrom(batch)
        del head.snapshots[:]
        key = head.SerializeToString(deterministic=True)
        group = groups.get(key)
        if group is None:
            groups[key] = batch
        else:
            group.snapshots.extend(batch.snapshots)
    req = IngestRequest()
    req.batches.extend(groups.values())
    return req


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: Literal["sent", "retry", "rejected"]
    delay: float | None = None
    """For a retry: the server's Retry-After (with jitter); None: the backoff decides."""
    detail: str = ""
    failover: bool = False
    """For a retry: another server may do better (no connection, timeout, 5xx)."""


def _reason(body: bytes) -> str:
    text = body[:2000].decode("utf-8", errors="replace").strip()
    try:
        detail = json.loads(text).get("detail")
        if detail is not None:
            text = detail if isinstance(detail, str) else json.dumps(detail)
    except (ValueError, AttributeError):
        pass
    return text[:300] or "(no reason given)"


class Shipper:
    """A ``SnapshotSink`` that delivers through the spool. ``start`` it, ``close`` it."""

    def __init__(
        self,
        settings: ShipperSettings,
        spool: Spool,
        *,
        transport: Transport | None = None,
        fsync_interval: float = 1.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if transport is None:

            def make(url: str) -> Transport:
                return HttpTransport(
                    ingest_url(url),
                    ca_file=settings.ca_file,
                    verify_tls=settings.verify_tls,
                    verify_hostname=settings.verify_hostname,
                )

            self.servers = Failover(
                settings.server_urls(),
                make,
                failback_after=settings.failback_after,
                monotonic=monotonic,
            )
        else:
            self.servers = Failover(["(injected transport)"], lambda _url: transport)
        self.settings = settings
        self._spool = spool
        self._fsync_interval = fsync_interval
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall = wall
        self._backoff = Backoff(settings.backoff_min, settings.backoff_max, self._rng)
        self.latency = LatencyTracker()
        self._encoder = RecordEncoder()
        # seq -> the record's request checksum, for gzip_request_for (put adds, the sender pops:
        # OrderedDict's popitem and pop are single calls, safe between the two threads)
        self._checksums: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self._wake = threading.Event()
        self._appended = threading.Event()
        self._closing = threading.Event()
        self._stop_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self._headers = {"Content-Type": PROTOBUF_CONTENT_TYPE, "User-Agent": USER_AGENT}
        if settings.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"

    # --- the sink ------------------------------------------------------------------------
    def put(self, batch: HostBatch) -> None:
        encoded = self._encoder.encode(batch)
        try:
            seq = self._spool.append(encoded.payload)
        except SpoolError as exc:
            logger.error("snapshot not spooled: %s", exc)
            self._spool.add_counter("dropped_size")
            return
        # the sender thread pops it (a record it reads first, or after a restart, is
        # decompressed for its checksum instead)
        self._checksums[seq] = (encoded.request_crc32, encoded.size)
        while len(self._checksums) > CHECKSUMS_KEPT:
            try:
                self._checksums.popitem(last=False)
            except KeyError:  # the sender took the rest meanwhile
                break
        self._wake.set()
        self._appended.set()

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._send_loop, "shipper"), (self._sync_loop, "spool-sync")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is pending for at most ``timeout`` seconds, then stop and sync."""
        self._closing.set()
        self._wake.set()
        sender = self._threads[0] if self._threads else None
        if sender is not None:
            sender.join(timeout)
        self._stop_now.set()
        self._appended.set()
        for t in self._threads:
            t.join(self.settings.timeout + 1.0)
        self.servers.close()
        self._spool.close()

    def stats(self) -> DeliveryStats:
        return DeliveryStats.from_spool(self._spool.stats(), self.latency)

    # --- the threads ---------------------------------------------------------------------
    def _sync_loop(self) -> None:
        """Sync the spool ``fsync_interval`` after an append; without appends, every
        ``IDLE_SYNC`` seconds for the spool's housekeeping. (Waking every ``fsync_interval``
        with nothing to do cost the agent more CPU than a collector.)"""
        while not self._stop_now.is_set():
            self._appended.wait(IDLE_SYNC)
            self._appended.clear()
            # one fsync_interval after the append: usually delivered by then, and a record
            # already delivered needs no fsync (Spool.sync)
            if self._stop_now.wait(self._fsync_interval):
                return
            try:
                self._spool.sync()
            except OSError:
                logger.exception("spool sync failed")

    def _wait(self, seconds: float) -> None:
        """A backoff wait; cut short by ``close`` so the flush makes one more attempt."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._closing.wait(seconds)

    def _send_loop(self) -> None:
        s = self.settings
        while not self._stop_now.is_set():
            records = self._spool.read_batch(
                s.max_batch_snapshots, s.max_batch_bytes, s.live_snapshots
            )
            if not records:
                if self._closing.is_set():
                    return
                self._wake.wait(IDLE_SYNC)  # put() and close() wake it
                self._wake.clear()
                continue
            try:
                body = self._encode(records)
            except (zlib.error, DecodeError) as exc:  # can never be sent: do not block the rest
                logger.error("dropping %d unreadable spooled records: %s", len(records), exc)
                self._spool.ack((r.seq for r in records), delivered=False, count_as="rejected")
                continue
            if not self._deliver(records, body):
                return
            more = len(records) >= s.max_batch_snapshots
            if more and s.drain_pause and not self._closing.is_set():
                self._stop_now.wait(s.drain_pause)

    def _encode(self, records: list[SpooledRecord]) -> bytes:
        for r in records:
            checksum = self._checksums.pop(r.seq, None)
        if len(records) == 1 and self.settings.compression == "gzip":
            # the usual case: no second compression
            body = gzip_request_for(records[0].payload, checksum)
            if body is not None:
                return body
        raw = build_request(records).SerializeToString()
        if self.settings.compression == "gzip":
            return gzip.compress(raw, compresslevel=6, mtime=0)
        return raw

    def _deliver(self, records: list[SpooledRecord], body: bytes) -> bool:
        """Send one body until it is accepted or refused for good; False when the agent is
        stopping and the body stays in the spool."""
        seqs = [r.seq for r in records]
        while not self._stop_now.is_set():
            url = self.servers.url
            outcome = self._attempt(body)
            if outcome.kind == "sent":
                self._backoff.reset()
                self._spool.ack(seqs, count_as="sent")
                self.servers.succeeded()
                return True
            if outcome.kind == "rejected":
                n = self._spool.ack(seqs, delivered=False, count_as="rejected")
                logger.error("server refused %d snapshots (never resent): %s", n, outcome.detail)
                return True
            another = outcome.failover and not self.servers.failed()
            if self._closing.is_set() and not another:
                return False  # stays in the spool, sent at the next start
            self._spool.add_counter("retried")
            if another:
                logger.warning(
                    "send of %d snapshots to %s failed (%s); sending to %s",
                    len(seqs),
                    url,
                    outcome.detail,
                    self.servers.url,
                )
                continue  # the next server at once
            delay = self._backoff.next_delay() if outcome.delay is None else outcome.delay
            logger.warning(
                "send of %d snapshots to %s failed (%s); retrying in %.1f s",
                len(seqs),
                url,
                outcome.detail,
                delay,
            )
            self._wait(delay)
        return False

    def _attempt(self, body: bytes) -> _Outcome:
        started = self._monotonic()
        try:
            resp = self.servers.post(body, self._headers, self.settings.timeout)
        except TransportError as exc:
            return _Outcome("retry", None, str(exc), failover=True)
        took = self._monotonic() - started
        status = resp.status
        if 200 <= status < 300:
            self.latency.observe(took)
            return _Outcome("sent")
        detail = f"HTTP {status}: {_reason(resp.body)}"
        if status in (429, 503):
            after = parse_retry_after(_header(resp.headers, "retry-after"), self._wall())
            if after is not None:  # up, and asking this agent to wait: not a failover
                after = min(after, self.settings.retry_after_max)
                return _Outcome("retry", jitter_after(after, self._rng), detail)
            return _Outcome("retry", None, detail, failover=status == 503)
        if status >= 500:
            return _Outcome("retry", None, detail, failover=True)
        if status < 200 or 300 <= status < 400 or status == 401:
            return _Outcome("retry", None, detail)
        return _Outcome("rejected", None, detail)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name)
