"""The delivery path as the agent service uses it: spool + shipper + the ``agent`` collector."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.delivery.spool import Spool
from hostpulse.agent.selfmetrics import AgentCollector

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
    from hostpulse.agent.delivery.enroll import key_path, read_key

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
