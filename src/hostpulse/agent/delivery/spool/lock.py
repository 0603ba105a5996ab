"""An exclusive, non-blocking lock on an open file, per platform: ``flock`` on POSIX, and
``msvcrt.locking`` on Windows (the standard library's; no extra dependency). Either is released
by the operating system when the process dies, so a crashed agent never leaves a stale lock."""

from __future__ import annotations

import os
import sys


class LockHeld(OSError):
    """Another process holds the lock."""


def lock_exclusive(fd: int) -> None:
    """Lock the file open at ``fd`` for this process, or raise LockHeld at once."""
    try:
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # the first byte stands for the file
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise LockHeld(exc.errno, exc.strerror) from None
