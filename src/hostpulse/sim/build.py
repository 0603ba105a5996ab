"""Turn simulated values into wire messages."""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from hostpulse import __version__
from hostpulse.protocol import Host, HostBatch, Label, Process, SeriesDef, Snapshot, varint
from hostpulse.sim.model import SimHost

_ROLES = ("web", "db", "cache", "batch", "api")


def host_message(host: SimHost, interval: float) -> Host:
    p = host.profile
    return Host(
        host_id=host.host_id,
        hostname=f"{_ROLES[p.index % len(_ROLES)]}-{p.index:05d}.sim",
        os="Linux",
        kernel="6.1.0-sim",
        arch="x86_64",
        cpu_model=f"Simulated CPU {p.cores}-core",
        boot_time=p.boot_time,
        logical_cores=p.cores,
        memory_bytes=p.memory_bytes,
        labels=[
            Label(name="env", value="prod" if p.index % 3 else "staging"),
            Label(name="role", value=_ROLES[p.index % len(_ROLES)]),
        ],
        interval_seconds=interval,
        agent_version=f"{__version__}-sim",
    )


def series_defs(host: SimHost) -> list[SeriesDef]:
    return [
        SeriesDef(metric=k, labels=[Label(name=n, value=v) for n, v in lab])
        for k, lab in host.series
    ]


def host_batch(
    host: SimHost,
    ts_ms: NDArray[np.int64],
    interval: float,
    process_every: int = 6,
    sequence_start: int = 0,
) -> HostBatch:
    """One batch with a snapshot per timestamp (counters advance across calls)."""
    values = host.block(ts_ms)
    batch = HostBatch(host=host_message(host, interval), series=series_defs(host))
    index = list(range(len(host.series)))
    busy_col = host.series.index(("cpu_busy_percent", ()))
    for row, ts in enumerate(ts_ms.tolist()):
        snap = batch.snapshots.add(timestamp_ms=ts, sequence=sequence_start + row)
        _fill(snap, host, index, values[row], busy_col, process_every)
    return batch


def _fill(
    snap: Snapshot,
    host: SimHost,
    index: list[int],
    row: NDArray[np.float64],
    busy_col: int,
    process_every: int,
) -> None:
    """A snapshot's values, and its top processes every ``process_every``-th sequence."""
    snap.series_index.extend(index)
    snap.values.extend(row.tolist())
    if process_every > 0 and snap.sequence % process_every == 0:
        load = float(row[busy_col]) / 100.0
        for pid, name, cpu, mem, rss in host.top_processes(load):
            proc = Process(
                pid=pid,
                name=name,
                user="root" if name == "sshd" else name,
                cpu_percent=cpu,
                mem_percent=mem,
                rss_bytes=rss,
                threads=4,
                status="running" if cpu > 5 else "sleeping",
                cmdline=f"/usr/bin/{name}",
            )
            snap.top_cpu.append(proc)
            snap.top_memory.append(proc)


class LiveEncoder:
    """One host's live requests, one snapshot each, as serialised ``IngestRequest`` bytes equal
    to ``IngestRequest(batches=[host_batch(...)]).SerializeToString()`` for the same values.

    Cheaper per request than ``host_batch``, which matters at 10,000 hosts (2,000 requests a
    second): the Host message and the ~150 series definitions are the same in every request and
    are serialised once (building them took 0.44 of the 1.2 ms of CPU a request cost), and the
    model's values are computed ``rows`` intervals at a time (one ``block`` call has ~0.5 ms of
    fixed cost however many rows it makes). The values of a row are the model's at the planned
    time of that tick; the snapshot carries the time it is sent."""

    def __init__(
        self, host: SimHost, interval: float, *, rows: int = 12, process_every: int = 6
    ) -> None:
        self.host = host
        self.step_ms = int(interval * 1000)
        self.rows = rows
        self.process_every = process_every
        head = HostBatch(host=host_message(host, interval), series=series_defs(host))
        self._head = head.SerializeToString()
        self._index = list(range(len(host.series)))
        self._busy = host.series.index(("cpu_busy_percent", ()))
        self._planned: deque[NDArray[np.float64]] = deque()
        self._next_ms: int | None = None

    def _row(self, ts_ms: int) -> NDArray[np.float64]:
        late = self._next_ms is None or abs(ts_ms - self._next_ms) > self.rows * self.step_ms
        if late:  # first call, or the sender fell far behind the plan (or jumped): plan anew
            self._planned.clear()
            self._next_ms = ts_ms
        if not self._planned:
            assert self._next_ms is not None
            ts = self._next_ms + self.step_ms * np.arange(self.rows, dtype=np.int64)
            self._planned.extend(self.host.block(ts))
        assert self._next_ms is not None
        self._next_ms += self.step_ms
        return self._planned.popleft()

    def request(self, ts_ms: int, sequence: int) -> tuple[bytes, int]:
        """The serialised request with one snapshot stamped ``ts_ms``, and its sample count."""
        snap = Snapshot(timestamp_ms=ts_ms, sequence=sequence)
        _fill(snap, self.host, self._index, self._row(ts_ms), self._busy, self.process_every)
        batch = self._head + HostBatch(snapshots=[snap]).SerializeToString()
        return b"\x0a" + varint.encode(len(batch)) + batch, len(self._index)
