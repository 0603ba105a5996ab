"""This machine's agent inside another process (``hostpulse up``): the service in a thread.

It lives beside ``service`` and not in ``delivery/``: it runs the whole agent, and the delivery
package must not import the service that imports it."""

from __future__ import annotations

import threading
from pathlib import Path

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings


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
