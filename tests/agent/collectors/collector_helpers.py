"""Helpers for the collector tests (a module with its own name, so that ``import`` never picks
up another directory's conftest): the fixture tree, fake statvfs, sample lookups."""

from __future__ import annotations

import os
import select
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hostpulse.agent.collectors.base import Reading

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "linux"


@dataclass(frozen=True)
class FakeRoot:
    proc: Path
    sys: Path

    def write(self, relative: str, text: str) -> None:
        """Rewrite a file under the fake root, e.g. ``write("proc/stat", ...)``."""
        path = self.proc.parent / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


class FakeStatvfs:
    """statvfs results for fixture mount points that do not exist on this machine."""

    def __init__(self, files: int = 1000, fail: dict[str, OSError] | None = None) -> None:
        self.files = files
        self.fail = fail or {}

    def __call__(self, path: str) -> os.statvfs_result:
        if path in self.fail:
            raise self.fail[path]
        # bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax
        return os.statvfs_result((4096, 4096, 1000, 400, 300, self.files, 250, 250, 0, 255))


def values(reading: Reading, key: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {s.labels: s.value for s in reading.samples if s.key == key}


def value(reading: Reading, key: str, **labels: str) -> float:
    """The one sample of ``key`` whose labels include ``labels``."""
    found = [
        s.value
        for s in reading.samples
        if s.key == key and all((k, v) in s.labels for k, v in labels.items())
    ]
    assert len(found) == 1, f"{key} {labels}: {len(found)} samples in {reading.samples}"
    return found[0]


def keys(reading: Reading) -> set[str]:
    return {s.key for s in reading.samples}


def wait_for_line(child: subprocess.Popen[bytes], timeout: float = 10.0) -> bytes:
    """The child's first line of output (it prints one when it is ready), within ``timeout``."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    assert ready, f"child printed nothing within {timeout} s"
    line = child.stdout.readline()
    assert line, f"child exited before it was ready (rc={child.poll()})"
    return line
