"""The one authentication check of ``POST /api/v1/ingest``, shared by the FastAPI route and
the ASGI fast path (``server/ingest/fastpath.py``) so that both enforce exactly the same rule."""

from __future__ import annotations

from hostpulse.server.auth.exceptions import AuthError, Throttled, Unauthenticated
from hostpulse.server.auth.service import AuthService


class IngestDenied(Exception):
    """Refused before the body is read: ``status``, ``reason`` and response ``headers``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str]) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


async def ingest_host(app_state: object, authorization: str | bytes | None) -> str:
    """The host the request's agent key may push for (the caller then requires every batch's
    ``host.host_id`` to equal it); IngestDenied (401/403/429) otherwise."""
    auth = getattr(app_state, "auth", None)
    if not isinstance(auth, AuthService):
        raise IngestDenied(503, "authentication is not running", {})
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    try:
        return await auth.ingest_host(authorization)
    except AuthError as exc:
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, Throttled):
            headers["Retry-After"] = str(exc.retry_after)
        raise IngestDenied(exc.status, exc.reason, headers) from None
