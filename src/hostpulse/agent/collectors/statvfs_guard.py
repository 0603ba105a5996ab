"""statvfs(2) on network filesystems with a time limit.

statvfs on an NFS or CIFS mount whose server is gone can block for minutes (or for ever with a
``hard`` mount). The call is made in a daemon thread and waited for up to ``timeout`` seconds;
a mount whose call did not return is "stuck": it is reported as an error, and not asked again
(no second thread piles up behind the first) until that call finally returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: Filesystem types whose statvfs goes over the network.
NETWORK_FS: frozenset[str] = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "afs", "9p",
        "davfs", "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.s3fs", "fuse.rclone",
        "fuse.juicefs", "fuse.gcsfuse",
    }
)  # fmt: skip


class StuckMountError(TimeoutError):
    pass


class GuardedStatvfs:
    def __init__(self, statvfs: Callable[[str], Any], timeout: float = 2.0) -> None:
        self._statvfs = statvfs
        self._timeout = timeout
        self._stuck: dict[str, threading.Thread] = {}

    def __call__(self, path: str, fstype: str) -> Any:
        if fstype not in NETWORK_FS:
            return self._statvfs(path)
        pending = self._stuck.get(path)
        if pending is not None:
            if pending.is_alive():
                raise StuckMountError(f"statvfs still blocked (over {self._timeout:g} s)")
            del self._stuck[path]
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["result"] = self._statvfs(path)
            except OSError as exc:
                box["error"] = exc

        worker = threading.Thread(target=call, name=f"statvfs {path}", daemon=True)
        worker.start()
        worker.join(self._timeout)
        if worker.is_alive():
            self._stuck[path] = worker
            logger.warning(
                "statvfs(%s) blocked for %g s: network filesystem down?", path, self._timeout
            )
            raise StuckMountError(f"statvfs blocked for {self._timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]
