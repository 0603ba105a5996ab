from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hostpulse.agent.collectors.pidfiles import PidFileReader


def test_rereads_fresh_content_and_forgets_a_process_that_ended() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reader = PidFileReader("/proc")
    try:
        pid = str(child.pid)
        assert reader.read(pid).startswith(f"{pid} (".encode())
        assert len(reader) == 1
        assert reader.read(pid).startswith(f"{pid} (".encode())  # through the kept descriptor
    finally:
        child.kill()
        child.wait(timeout=10)
    with pytest.raises((FileNotFoundError, ProcessLookupError)):
        reader.read(pid)
    assert len(reader) == 0
    reader.close()


def test_keeps_at_most_max_open_descriptors_and_retain_closes_the_rest() -> None:
    reader = PidFileReader("/proc", max_open=1)
    me, parent = str(os.getpid()), str(os.getppid())
    assert reader.read(me).startswith(me.encode())
    assert reader.read(parent).startswith(parent.encode())  # opened and closed: over the cap
    assert len(reader) == 1
    reader.retain([parent])
    assert len(reader) == 0
    reader.close()
