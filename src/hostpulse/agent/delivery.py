"""The delivery path as the agent service uses it: spool + shipper + the ``agent`` collector."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from hostpulse.agent.delivery_settings import ShipperSettings, SpoolSettings
from hostpulse.agent.selfmetrics import AgentCollector
from hostpulse.agent.shipper import Shipper
from hostpulse.agent.spool import Spool

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    shipper: Shipper
    collector: AgentCollector

    def close(self, timeout: float) -> None:
        """Deliver what is pending for at most ``timeout`` seconds, then sync the spool."""
        self.shipper.close(timeout)


def with_key(shipper: ShipperSettings, spool: SpoolSettings) -> ShipperSettings:
    """``shipper`` with ``api_key`` from the key file when it was not given."""
    if shipper.api_key:
        return shipper
    from hostpulse.agent.enroll import key_path, read_key

    path = key_path(shipper, spool)
    key = read_key(path)
    if key is None:
        logger.warning(
            "no agent key (%s does not exist): the server will refuse the samples; "
            "enroll this host: hostpulse agent --server URL --enroll TOKEN",
            path,
        )
        return shipper
    return replace(shipper, api_key=key)


def start_delivery(shipper: ShipperSettings, spool: SpoolSettings) -> Delivery:
    """Open (and recover) the spool and start shipping to ``shipper.server`` with the host's
    agent key (``shipper.api_key`` or the key file)."""
    s = Shipper(with_key(shipper, spool), Spool(spool), fsync_interval=spool.fsync_interval)
    s.start()
    return Delivery(s, AgentCollector(s.stats))


class LocalAgent:
    """This machine's agent in a background thread of another process (``hostpulse up``):
    ``start(url)`` once the server accepts requests, ``stop()`` when it has stopped: the spool is
    synced, and what was not delivered yet goes at the next start."""

    def __init__(
        self,
        spool_dir: Path,
        *,
        interval: float = 5.0,
        pinned_cert: str | None = None,
        host_id: str | None = None,
    ) -> None:
        """``pinned_cert``: the server's own certificate, the only one trusted for an
        ``https://`` URL (whatever names it was issued for)."""
        self._spool_dir = spool_dir
        self._pinned = pinned_cert
        self._interval = interval
        self._host_id = host_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, server_url: str, api_key: str | None = None) -> None:
        """Ship to ``server_url`` with ``api_key`` (this host's agent key)."""
        from hostpulse.agent.config import AgentSettings
        from hostpulse.agent.service import serve

        settings = AgentSettings(
            interval=self._interval,
            host_id=self._host_id,
            shipper=ShipperSettings(
                server=server_url,
                api_key=api_key,
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
