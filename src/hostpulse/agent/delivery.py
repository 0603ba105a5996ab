"""The delivery path as the agent service uses it: spool + shipper + the ``agent`` collector."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from hostpulse.agent.delivery_settings import ShipperSettings, SpoolSettings
from hostpulse.agent.selfmetrics import AgentCollector
from hostpulse.agent.shipper import Shipper
from hostpulse.agent.spool import Spool


@dataclass(slots=True)
class Delivery:
    shipper: Shipper
    collector: AgentCollector

    def close(self, timeout: float) -> None:
        """Deliver what is pending for at most ``timeout`` seconds, then sync the spool."""
        self.shipper.close(timeout)


def start_delivery(shipper: ShipperSettings, spool: SpoolSettings) -> Delivery:
    """Open (and recover) the spool and start shipping to ``shipper.server``."""
    s = Shipper(shipper, Spool(spool), fsync_interval=spool.fsync_interval)
    s.start()
    return Delivery(s, AgentCollector(s.stats))


class LocalAgent:
    """This machine's agent in a background thread of another process (``hostpulse up``):
    ``start(url)`` once the server accepts requests, ``stop()`` before the server stops, so the
    last snapshots are flushed while it still listens."""

    def __init__(
        self, spool_dir: Path, *, interval: float = 5.0, pinned_cert: str | None = None
    ) -> None:
        """``pinned_cert``: the server's own certificate, the only one trusted for an
        ``https://`` URL (whatever names it was issued for)."""
        self._spool_dir = spool_dir
        self._pinned = pinned_cert
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, server_url: str) -> None:
        from hostpulse.agent.config import AgentSettings
        from hostpulse.agent.service import serve

        settings = AgentSettings(
            interval=self._interval,
            shipper=ShipperSettings(
                server=server_url,
                ca_file=self._pinned,
                verify_hostname=self._pinned is None,
            ),
            spool=SpoolSettings(dir=str(self._spool_dir)),
        )
        self._thread = threading.Thread(
            target=serve, args=(settings,), kwargs={"stop": self._stop}, name="local-agent"
        )
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop collecting, deliver what is pending (bounded), sync the spool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
