"""Settings of the delivery path (``shipper:`` and ``spool:``), kept apart from the code so
that loading the agent's configuration imports nothing heavy.

Plain frozen dataclasses, as the rest of the agent's settings: bounds are in field metadata for
the settings validator (``agent/settings_schema.py``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class ShipperSettings:
    """``shipper:`` in the agent's configuration; ``server`` is ``--server``."""

    server: str | None = None
    """Server base URL (``https://monitor.example.com``); None: do not ship. Several URLs,
    comma-separated (or a YAML list in the file), are tried in this order of preference
    (``delivery/failover.py``)."""
    failback_after: float = field(default=120.0, metadata={"min": 1.0, "max": 86400.0})
    """After failing over, try the first server URL again after this many seconds."""
    api_key: str | None = None
    """Sent as ``Authorization: Bearer <key>``; default: the key in ``key_file``."""
    key_file: str | None = None
    """Where ``--enroll`` saves this host's key (mode 0600) and the agent reads it from;
    default ``agent.key`` beside the spool directory."""
    timeout: float = field(default=10.0, metadata={"min": 0.1, "max": 300.0})
    max_batch_snapshots: int = field(default=200, metadata={"min": 1, "max": 10_000})
    """Oldest snapshots per request: 200 keeps the agent's peak memory while draining flat."""
    max_batch_bytes: int = field(default=2_000_000, metadata={"min": 1024})
    """Stored (compressed) bytes of snapshots in one request."""
    live_snapshots: int = field(default=5, metadata={"min": 0, "max": 100})
    """Newest snapshots added to each backlog request so the live view stays current."""
    backoff_min: float = field(default=1.0, metadata={"min": 0.01})
    backoff_max: float = field(default=60.0, metadata={"min": 0.01})
    retry_after_max: float = field(default=600.0, metadata={"min": 1.0})
    drain_pause: float = field(default=0.1, metadata={"min": 0.0, "max": 60.0})
    """Pause between two backlog requests, so a fleet back-filling does not swamp the server."""
    flush_timeout: float = field(default=5.0, metadata={"min": 0.0, "max": 600.0})
    """On shutdown, keep delivering what is pending for at most this long (seconds)."""
    compression: Literal["gzip", "none"] = "gzip"
    ca_file: str | None = None
    """PEM file of the CA certificate(s) that signed the server's certificate (``--ca``); a
    self-signed server certificate itself works too. Default: the system's CAs."""
    verify_tls: bool = True
    """False turns certificate checks off entirely (testing only: anyone can pose as the
    server); prefer ``ca_file``."""
    verify_hostname: bool = True
    """False accepts a certificate trusted through ``ca_file`` whatever host name it was issued
    for: ``hostpulse up``'s own agent uses it for its loopback connection, pinned to the
    server's certificate."""

    def server_urls(self) -> list[str]:
        """The server URLs in order of preference (``server`` split at commas)."""
        if self.server is None:
            return []
        return [item.strip() for item in self.server.split(",") if item.strip()]


def default_spool_dir() -> Path:
    """The per-user spool directory when ``spool.dir`` is not set: ``%LOCALAPPDATA%`` on
    Windows (``~/AppData/Local``), the XDG state directory elsewhere."""
    if sys.platform == "win32":
        return Path.home() / "AppData" / "Local" / "hostpulse" / "spool"
    return Path.home() / ".local" / "state" / "hostpulse" / "spool"


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    """``spool:`` in the agent's configuration (plain dataclass: the agent avoids pydantic for
    its memory budget; bounds are in ``metadata`` for the settings validator)."""

    dir: str | None = None
    """Spool directory; default ``~/.local/state/hostpulse/spool``."""
    max_bytes: int = field(default=500_000_000, metadata={"min": 256 * 1024})
    """Size cap in bytes (500 MB): beyond it the oldest records are dropped and counted."""
    max_age: float = field(default=7 * 86400.0, metadata={"min": 1.0})
    """Age cap in seconds (7 days): older records are dropped and counted."""
    fsync_interval: float = field(default=1.0, metadata={"min": 0.01, "max": 60.0})
    """Appends are fsync'd together at most this often (seconds); a crash of the machine loses
    at most this much, a crash of the agent alone loses nothing that was appended."""
    state_interval: float = field(default=30.0, metadata={"min": 0.0, "max": 600.0})
    """The delivery cursor and counters (``state.json``) are written at most this often
    (seconds), and always at shutdown and before delivered segments are deleted. Writing them
    after every request cost more CPU than the rest of the delivery; a crash of the agent
    sends at most this much again, which the server stores once."""
    segment_bytes: int | None = field(default=None, metadata={"min": 16 * 1024})
    """Size of one segment file; default max_bytes/16, at most 8 MB."""

    def directory(self) -> Path:
        return Path(self.dir).expanduser() if self.dir else default_spool_dir()

    def segment_limit(self) -> int:
        if self.segment_bytes is not None:
            return min(self.segment_bytes, self.max_bytes // 4)
        return max(16 * 1024, min(8 * 1024 * 1024, self.max_bytes // 16))
