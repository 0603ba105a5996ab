"""`hostpulse` commands as a user runs them: a subprocess whose output the test reads line by
line (bounded in time), stopped by its PID."""

from __future__ import annotations

import codecs
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

CLI = [sys.executable, "-c", "from hostpulse.cli.main import main; main()"]


def run_cli(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``hostpulse *args`` to its end; stdout and stderr captured."""
    return subprocess.run(
        [*CLI, *args],
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class CliProcess:
    """``hostpulse *args`` running (stdout and stderr together, unbuffered); as a context
    manager it is stopped with SIGTERM at the end if it still runs."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str] | None = None, *, group: bool = False
    ) -> None:
        """``group``: in a process group of its own (``os.killpg(proc.pid, ...)`` signals it
        and its children, as a terminal or a service manager does)."""
        self.proc = subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
            process_group=0 if group else None,
        )
        self.output = ""
        """What it has printed so far (what ``wait_for`` read)."""
        self.pending = ""
        """Read from the pipe by ``wait_for`` but not yet part of a line it looked at."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read lines until one matches ``pattern``; fails with the output so far when the
        process ends or ``timeout`` seconds pass first."""
        assert self.proc.stdout is not None
        # the pipe is read raw (os.read) and split here: a buffered readline could take
        # several lines off the pipe at once and leave the one waited for in its buffer,
        # where select() no longer sees it
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                while "\n" in self.pending:
                    line, self.pending = self.pending.split("\n", 1)
                    self.output += line + "\n"
                    m = re.search(pattern, line)
                    if m:
                        return m
                if sel.select(timeout=0.5):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    self.pending += self._decoder.decode(chunk)
                elif self.proc.poll() is not None:
                    break
        finally:
            sel.close()
        raise AssertionError(f"no line matching {pattern!r}; output so far: {self.output!r}")

    def url(self) -> str:
        """The URL the server prints once it listens (`hostpulse server` or `hostpulse up`)."""
        return self.wait_for(r"(?:listening on|hostpulse is up:) (https?://\S+)").group(1)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Send ``sig``, wait for the end (killed after 30 s); returns the rest of the output."""
        try:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            assert self.proc.stdout is not None
            rest, self.pending = self.pending + self.proc.stdout.read(), ""
            self.proc.stdout.close()
        self.output += rest
        return rest

    def __enter__(self) -> CliProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.stop()
