"""Turn simulated values into wire messages."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hostpulse import __version__
from hostpulse.protocol import Host, HostBatch, Label, Process, SeriesDef
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
        snap.series_index.extend(index)
        snap.values.extend(values[row].tolist())
        seq = sequence_start + row
        if process_every > 0 and seq % process_every == 0:
            load = float(values[row, busy_col]) / 100.0
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
    return batch
