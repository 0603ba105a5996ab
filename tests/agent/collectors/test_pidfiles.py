from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostpulse.agent.collectors.pidfiles import OpenFiles, PidFileReader


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


def test_open_files_read_whole_files_and_follow_their_changes(tmp_path: Path) -> None:
    """A kept descriptor re-reads the file from its start: a file larger than one read (a
    /proc/stat of hundreds of cores) comes whole, a rewritten one gives its new text, and a
    file that cannot be opened raises as an open would."""
    files = OpenFiles(max_open=2)
    big = tmp_path / "stat"
    text = "".join(f"cpu{i} {i} 0 0 0 0 0 0 0 0 0\n" for i in range(10_000))  # ~300 KB
    big.write_text(text)
    assert files.text(str(big)) == text
    big.write_text("cpu 1 2 3\n")
    assert files.text(str(big)) == "cpu 1 2 3\n"
    assert len(files) == 1
    with pytest.raises(FileNotFoundError):
        files.read(str(tmp_path / "missing"))
    for n in range(3):  # beyond max_open: read, not kept
        (tmp_path / f"f{n}").write_text(str(n))
        assert files.read(str(tmp_path / f"f{n}")) == str(n).encode()
    assert len(files) == 2
    files.close()
    assert len(files) == 0
