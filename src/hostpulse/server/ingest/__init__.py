"""Server-side ingest: everything between an agent's ``POST /api/v1/ingest`` and the store.

- ``fastpath``: the ASGI middleware that answers the route without the framework;
  ``api/ingest.py`` is the documented FastAPI route, and both use
- ``body``: reading the body within its size and time bounds;
- ``service``: ``IngestService``, admission, decoding off the event loop, the host and series
  bounds, and the hand-over to the store and the listeners (live hub, alerts);
- ``admission``: how many requests (and bytes) are taken on at once;
- ``decode`` and ``wire``: decompression and parsing, large protobuf bodies in pieces;
- ``validate`` and ``checker``: the checks of a parsed request, and ``Checker`` running them
  whole (the same code in the server process and in a worker);
- ``pool`` and ``worker``: the ingest worker processes that decode, check and prepare requests
  on other cores (``ingest_workers``);
- ``acceptor`` and ``acceptors``: the ingest acceptor processes that accept the connections and
  read agents' ingest requests on other cores, handing every other connection to the server
  process (``ingest_acceptors``);
- ``limits`` and ``errors``: the bounds and the one exception (an HTTP status and a reason).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.limits import IngestLimits

if TYPE_CHECKING:
    from hostpulse.server.ingest.service import IngestService, Listener

__all__ = ["IngestError", "IngestLimits", "IngestService", "Listener"]


def __getattr__(name: str) -> Any:
    # ``service`` (and the store, SQLAlchemy and Alembic behind it) is imported on first use:
    # the acceptor and worker processes import this package but need none of it
    if name in ("IngestService", "Listener"):
        from hostpulse.server.ingest import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
