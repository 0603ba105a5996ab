"""Fixtures for the collector tests: a writable copy of the fixture /proc and /sys tree, and
child processes that are always stopped by PID."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from collector_helpers import FIXTURES, FakeRoot


@pytest.fixture
def fake_root(tmp_path: Path) -> FakeRoot:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES, root)
    return FakeRoot(proc=root / "proc", sys=root / "sys")


@pytest.fixture
def spawn() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start ``python -c <code>`` children; each is killed by PID when the test ends."""
    children: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
