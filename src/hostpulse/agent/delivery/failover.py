"""Several server URLs (``--server A --server B`` or ``shipper.server: [A, B]``): which one the
shipper sends to, and when it moves on.

The URLs are in order of preference. The shipper sends to the current one until a send fails
for a reason another server might not share (no connection, a timeout, a 5xx without
``Retry-After``); then the *same* body goes at once to the next URL. Only when every URL has
failed in a row does the shipper back off (exponential, jittered) and start the next round with
the first URL. After ``failback_after`` seconds on a less preferred URL, the next request tries
the first one again; if it still fails, the request moves straight on (one failed connection
per ``failback_after``).

A body leaves the spool only after a server answered 2xx, whichever server that was: delivery
stays at-least-once across a failover (a request cut after the server stored it is sent again,
and the server de-duplicates by host, series and timestamp).

Not a failover: 429 or 503 *with* ``Retry-After`` (the server is up and asks the agent to
wait; with replicas sharing their rate limits, another one would say the same) and 401 (the
host's key is the same everywhere).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from hostpulse.agent.delivery.transport import Response, Transport

logger = logging.getLogger(__name__)


class Failover:
    """A ``Transport`` over several servers, one of them current (see the module docstring).

    ``post`` goes to the current server; the shipper reports each outcome with ``succeeded``
    or ``failed``. Transports are made lazily by ``make`` (one persistent connection each)."""

    def __init__(
        self,
        urls: Sequence[str],
        make: Callable[[str], Transport],
        *,
        failback_after: float = 120.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("shipper.server: at least one server URL is needed to ship")
        self.urls = list(urls)
        self._make = make
        self._transports: list[Transport | None] = [None] * len(self.urls)
        self._failback_after = failback_after
        self._monotonic = monotonic
        self.current = 0
        self._failed_in_row = 0
        self._first_again_at = 0.0  # when to try the first URL again after leaving it
        self.switches = 0

    @property
    def url(self) -> str:
        return self.urls[self.current]

    def _transport(self, index: int) -> Transport:
        transport = self._transports[index]
        if transport is None:
            transport = self._make(self.urls[index])
            self._transports[index] = transport
        return transport

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        return self._transport(self.current).post(body, headers, timeout)

    def succeeded(self) -> None:
        """The current server took a request. Back to the first URL when it is time."""
        self._failed_in_row = 0
        if self.current != 0 and self._monotonic() >= self._first_again_at:
            logger.info("trying the preferred server %s again", self.urls[0])
            self._close(self.current)
            self._switch(0)

    def failed(self) -> bool:
        """The current server failed in a way another may not. Moves to the next URL; True
        when every URL has now failed in a row (back off before the next attempt, which goes
        to the first URL again)."""
        self._close(self.current)
        self._failed_in_row += 1
        if self._failed_in_row >= len(self.urls):
            self._failed_in_row = 0
            self._switch(0)
            return True
        if self.current == 0:
            self._first_again_at = self._monotonic() + self._failback_after
        previous = self.url
        self._switch((self.current + 1) % len(self.urls))
        logger.warning("server %s failed; failing over to %s", previous, self.url)
        return False

    def _switch(self, index: int) -> None:
        if index != self.current:
            self.current = index
            self.switches += 1

    def _close(self, index: int) -> None:
        transport = self._transports[index]
        if transport is not None:
            transport.close()

    def close(self) -> None:
        for i in range(len(self.urls)):
            self._close(i)
