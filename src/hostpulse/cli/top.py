"""``hostpulse top``: a live full-screen view of this machine, refreshed every second."""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from hostpulse.protocol import HostBatch

QUIT_KEYS = (b"q", b"Q")


class _Latest:
    """Snapshot sink for the view: keeps the newest batch and wakes the drawing loop."""

    def __init__(self) -> None:
        self.batch: HostBatch | None = None
        self.fresh = threading.Event()

    def put(self, batch: HostBatch) -> None:
        self.batch = batch
        self.fresh.set()


@contextmanager
def _keys() -> Iterator[int | None]:
    """stdin in cbreak mode (keys arrive unbuffered, Ctrl-C still interrupts); restored after."""
    try:
        import termios
        import tty
    except ImportError:  # Windows: no key handling, Ctrl-C still quits
        yield None
        return
    if not sys.stdin.isatty():
        yield None
        return

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait(fd: int | None, latest: _Latest, timeout: float) -> bool:
    """Wait for a key or a new snapshot; True when a quit key was pressed."""
    if fd is None:
        latest.fresh.wait(timeout)
        return False
    ready, _, _ = select.select([fd], [], [], timeout)
    if ready:
        data = os.read(fd, 64)
        if not data or any(k in data for k in QUIT_KEYS):
            return True
    return False


def top(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes (min 1).")] = 1.0,
    top_n: Annotated[int, typer.Option("--top-n", help="Processes listed.")] = 15,
) -> None:
    """Live view of CPU cores, memory, disks, network and top processes. q quits."""
    from rich.console import Console
    from rich.live import Live

    from hostpulse.agent.config import ConfigError, load_settings
    from hostpulse.agent.service import build_runner
    from hostpulse.cli.top_view import render

    try:
        settings = load_settings(
            env={},
            overrides={
                "interval": interval,
                "top_n": top_n,
                "intervals.disk_usage": 5,
                "intervals.connections": 3,
                "intervals.processes": max(interval, 2),
            },
        )
    except ConfigError as exc:
        sys.stderr.write(f"hostpulse top: {exc}\n")
        raise typer.Exit(2) from None
    latest = _Latest()
    runner = build_runner(settings, [latest], budget=min(settings.interval / 2, 0.8))
    stop = threading.Event()
    worker = threading.Thread(target=runner.run, args=(stop,), name="top-runner", daemon=True)
    worker.start()
    console = Console()

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # leave through the same path as Ctrl-C: terminal restored

    previous = signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C quits also when this process was started with SIGINT ignored (Python then
    # installs no KeyboardInterrupt handler of its own: a parent such as a test runner's
    # worker, or nohup, passes the ignoring on)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    try:
        with _keys() as fd, Live(console=console, screen=True, auto_refresh=False) as live:
            live.update(render(latest.batch), refresh=True)
            while True:
                if _wait(fd, latest, 0.25):
                    break
                if latest.fresh.is_set():
                    latest.fresh.clear()
                    live.update(render(latest.batch), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        stop.set()
        worker.join(2.0)
        runner.close()
