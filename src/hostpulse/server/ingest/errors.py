"""The ingest package's exceptions."""

from __future__ import annotations


class IngestError(Exception):
    """A request that is refused; ``status`` is the HTTP status to answer with, ``headers``
    extra response headers (``Retry-After`` of an overload 503)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers
