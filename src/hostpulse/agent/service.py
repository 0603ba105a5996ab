"""Wire settings, collectors, runner and sinks together: the long-running agent and --once."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from hostpulse.agent.collectors.base import Collector
from hostpulse.agent.config import AgentSettings, parse_listen

if TYPE_CHECKING:
    from hostpulse.agent.delivery.pipeline import Delivery
from hostpulse.agent.runner import Runner
from hostpulse.agent.snapshot import HostIdentity, SnapshotSink, resolve_host_id
from hostpulse.protocol import HostBatch

logger = logging.getLogger(__name__)

ONCE_PAUSE = 1.0
"""Seconds between the two readings of ``--once``, so that rates are present."""


class ListenError(OSError):
    """The exporter could not bind its address."""


def build_runner(
    settings: AgentSettings,
    sinks: Iterable[SnapshotSink] = (),
    *,
    collectors: Sequence[Collector] | None = None,
    budget: float | None = None,
    agent_collector: Collector | None = None,
) -> Runner:
    if collectors is None:
        from hostpulse.agent.collectors import build_collectors
        from hostpulse.agent.selfmetrics import AgentCollector

        if settings.host_root is not None:
            import psutil

            psutil.PROCFS_PATH = settings.proc_root()  # its fallbacks read the host's too
        collectors = [
            *build_collectors(
                top_n=settings.top_n,
                proc_root=settings.proc_root(),
                sys_root=settings.sys_root(),
                rootfs=settings.rootfs(),
                cmdline=settings.process_cmdline,
                containers=settings.containers,
                custom=settings.custom,
            ),
            agent_collector or AgentCollector(None),
        ]
    identity = HostIdentity(
        host_id=resolve_host_id(
            settings.host_id, machine_id=Path(settings.rootfs()) / "etc" / "machine-id"
        ),
        labels=dict(settings.labels),
        interval_seconds=settings.interval,
    )
    return Runner(
        collectors,
        interval=settings.interval,
        interval_of=settings.interval_of,
        identity=identity,
        sinks=sinks,
        budget=budget,
    )


def collect_once(settings: AgentSettings, *, pause: float = ONCE_PAUSE) -> HostBatch:
    """Two readings ``pause`` seconds apart (rates need two); the second snapshot."""
    runner = build_runner(settings, budget=10.0)
    try:
        start = time.monotonic()
        runner.tick(everything=True)
        threading.Event().wait(max(0.0, start + pause - time.monotonic()))
        return runner.tick(everything=True)
    finally:
        runner.close()


def _install_stop_signals(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def serve(
    settings: AgentSettings,
    *,
    stop: threading.Event | None = None,
    sinks: Sequence[SnapshotSink] = (),
    collectors: Sequence[Collector] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``): collect on schedule, serve /metrics if asked."""
    stop = stop or threading.Event()
    restore = _install_stop_signals(stop)
    exporter = None
    delivery: Delivery | None = None
    all_sinks: list[SnapshotSink] = list(sinks)
    try:
        if settings.exporter.listen is not None:
            from hostpulse.agent.exporter import Exporter, ExporterCache

            cache = ExporterCache()
            host, port = parse_listen(settings.exporter.listen)
            try:
                exporter = Exporter(cache, host, port)
            except OSError as exc:
                raise ListenError(exc.errno, exc.strerror) from None
            all_sinks.append(cache)
            logger.info("serving Prometheus metrics on %s", exporter.url)
        if settings.shipper.server is not None:
            from hostpulse.agent.delivery.pipeline import start_delivery

            delivery = start_delivery(settings.shipper, settings.spool)
            all_sinks.append(delivery.shipper)
            logger.info(
                "shipping to %s (spool %s)",
                " then ".join(settings.shipper.server_urls()),
                settings.spool.directory(),
            )
        if not all_sinks:
            logger.warning("no exporter (--listen) and no server: snapshots go nowhere")
        runner = build_runner(
            settings,
            all_sinks,
            collectors=collectors,
            agent_collector=delivery.collector if delivery else None,
        )
        # Everything made so far (modules, the catalog, settings) lives as long as the
        # process: out of the garbage collector's sight, its full collections stay short.
        gc.collect()  # (not the start-up's garbage)
        gc.freeze()
        logger.info(
            "agent started: host_id=%s interval=%.1fs",
            runner.identity.host_id,
            settings.interval,
        )
        try:
            runner.run(stop)
        finally:
            runner.close()
    finally:
        if delivery is not None:
            delivery.close(settings.shipper.flush_timeout)
        if exporter is not None:
            exporter.close()
        restore()
    logger.info("agent stopped")
