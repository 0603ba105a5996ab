"""Admission control for ingest: how much the server takes on at once.

A request is admitted when its body has been read and before it is decoded; it stays admitted
until the store has made it durable (or refused it). Beyond ``max_requests`` admitted requests,
or ``max_bytes`` of their bodies together, the next one is answered at once with 503 and
``Retry-After`` and nothing of it is stored: under overload agents hear "come back in N s"
rather than waiting for a timeout, and their spools keep the data meanwhile. A single request
is always admitted when nothing else is, however large (its size is capped by
``max_body_bytes``)."""

from __future__ import annotations

from dataclasses import dataclass, field


class Overloaded(Exception):
    """Refused for now; ``retry_after`` seconds is the advice given to the client."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(slots=True)
class Admission:
    max_requests: int
    max_bytes: int
    retry_after: int
    pending: int = 0
    pending_bytes: int = 0
    refused: int = field(default=0)
    """Requests answered 503 since the start."""

    def enter(self, size: int) -> None:
        """Take a place for a request of ``size`` bytes (``leave`` it when done); Overloaded
        when there is none. The server runs on one event loop: no lock is needed between the
        check and the count."""
        if self.pending >= self.max_requests or (
            self.pending and self.pending_bytes + size > self.max_bytes
        ):
            self.refused += 1
            raise Overloaded(
                f"server busy: {self.pending} ingest requests "
                f"({self.pending_bytes} bytes) are being stored; retry in {self.retry_after} s",
                self.retry_after,
            )
        self.pending += 1
        self.pending_bytes += size

    def leave(self, size: int) -> None:
        self.pending -= 1
        self.pending_bytes -= size
