"""``hostpulse top`` driven in a pseudo-terminal: it draws, and q / Ctrl-C quit cleanly."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable

import pytest
from conftest import HOSTPULSE, clean_env


def _controlling_tty(ignore_sigint: bool) -> Callable[[], None]:
    def setup() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if ignore_sigint:  # as a parent started in the background or by nohup passes it on
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return setup


class Pty:
    def __init__(self, rows: int = 40, cols: int = 140, ignore_sigint: bool = False) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.saved = termios.tcgetattr(slave)
        # PYTHONFAULTHANDLER: a top that does not quit is sent SIGABRT and prints where it hung
        env = clean_env(
            TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows), PYTHONFAULTHANDLER="1"
        )
        self.proc = subprocess.Popen(
            [HOSTPULSE, "top"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_controlling_tty(ignore_sigint),
        )
        self.slave = slave
        self.screen = b""

    def read_until(self, needle: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while needle not in self.screen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    break
        return needle in self.screen

    def drain(self) -> None:
        while select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.screen += data

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.master)
        os.close(self.slave)


def quit_and_check_restored(pty: Pty, quit: Callable[[], None]) -> None:
    # the full view, with per-core bars and the process table, once a snapshot is in
    assert pty.read_until(b"Top processes by CPU", 20), pty.screen[-2000:]
    assert pty.read_until(b"cpu0", 5)
    assert b"Memory" in pty.screen and b"Network" in pty.screen
    assert b"\x1b[?1049h" in pty.screen  # switched to the alternate screen
    quit()
    # it quits in well under a second; the bound is for a 2-core machine running the suite
    deadline = time.monotonic() + 15
    while pty.proc.poll() is None and time.monotonic() < deadline:
        pty.drain()
        select.select([pty.master], [], [], 0.05)
    if pty.proc.poll() is None:
        pty.proc.send_signal(signal.SIGABRT)  # the faulthandler's stacks, for the message
        pty.read_until(b"most recent call first", 5)
        pty.drain()
    assert pty.proc.returncode == 0, pty.screen[-4000:].decode(errors="replace")
    pty.drain()
    # the terminal is restored: back from the alternate screen, line discipline as before
    assert b"\x1b[?1049l" in pty.screen.rsplit(b"\x1b[?1049h", 1)[-1]
    assert termios.tcgetattr(pty.slave)[3] == pty.saved[3]


@pytest.mark.parametrize("key", [b"q", b"\x03"])
def test_top_renders_and_quits_on_key(key: bytes) -> None:
    pty = Pty()
    try:
        quit_and_check_restored(pty, lambda: os.write(pty.master, key) and None)
    finally:
        pty.close()


def test_top_quits_cleanly_on_sigterm() -> None:
    pty = Pty()
    try:
        quit_and_check_restored(pty, lambda: pty.proc.send_signal(signal.SIGTERM))
    finally:
        pty.close()


def test_ctrl_c_quits_even_when_started_with_sigint_ignored() -> None:
    """A process started with SIGINT ignored (by a background shell job, nohup, a test
    runner's worker) gets no KeyboardInterrupt from Python: top installs its own handler, so
    Ctrl-C still quits and restores the terminal."""
    pty = Pty(ignore_sigint=True)
    try:
        quit_and_check_restored(pty, lambda: os.write(pty.master, b"\x03") and None)
    finally:
        pty.close()
