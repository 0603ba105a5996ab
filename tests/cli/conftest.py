"""Run the real ``hostpulse`` console script in subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))
URL = re.compile(r"serving Prometheus metrics on (http://\S+/metrics)")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env.update(extra)
    return env


class AgentProcess:
    """``hostpulse agent --listen 127.0.0.1:0 ...``; ``url`` is read from its log."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [HOSTPULSE, "agent", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env or clean_env(),
        )
        self.log: list[str] = []
        self._url = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._url.wait(20):
            self.stop()
            raise AssertionError("agent did not start serving:\n" + "".join(self.log))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            match = URL.search(line)
            if match:
                self.url = match.group(1)
                self._url.set()

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def agent_process() -> Iterator[type[AgentProcess]]:
    started: list[AgentProcess] = []

    class Tracked(AgentProcess):
        def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
            started.append(self)
            super().__init__(*args, env=env)

    yield Tracked
    for p in started:
        p.stop()


def wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")
