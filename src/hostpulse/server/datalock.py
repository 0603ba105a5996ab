"""One embedded server per data directory: an OS file lock (``flock``) on ``server.lock`` in
the data directory, held for the server process's lifetime, with the holder's pid written in
it for the message a second server prints. The kernel drops the lock when the process ends,
however it ends (SIGKILL included), so a stale file never blocks a start."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "server.lock"


class DataDirInUse(Exception):
    """Another process holds the data directory's lock."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        self.directory = directory
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "a process that is still starting"
        super().__init__(
            f"the data directory {str(directory)!r} is in use by another hostpulse server "
            f"({holder}); stop that one first, or give this one another data directory "
            "(--data-dir / HOSTPULSE_DATA_DIR)"
        )


def _holder(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class DataDirLock:
    """The locks of the data directory and of the store's directory when it lives elsewhere:
    ``acquire`` takes them all or raises ``DataDirInUse`` naming the first one another
    process holds (keeping none); ``release`` (or the process's end) lets them go."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = list(dict.fromkeys(d.resolve() for d in directories))
        self._fds: list[int] = []

    def acquire(self) -> DataDirLock:
        try:
            for directory in self.directories:
                self._fds.append(_lock(directory))
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._fds:
            fd = self._fds.pop()
            os.ftruncate(fd, 0)  # the file stays: removing it would race with the next start
            os.close(fd)  # releases the lock

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _lock(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        raise DataDirInUse(directory, pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
