"""The delivery path as the agent service uses it: spool + shipper + the ``agent`` collector."""

from __future__ import annotations

from dataclasses import dataclass

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
