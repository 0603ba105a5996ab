"""GET /api/v1/health (the process is alive) and /api/v1/ready (the store is usable)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hostpulse.server.api.deps import StoreDep
from hostpulse.server.api.models import Health, Ready

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "The store is not usable."}},
    summary="Readiness: the store can read and write",
)
async def ready(store: StoreDep) -> Ready | JSONResponse:
    try:
        ok = await store.ready()
        detail = "" if ok else "store is not ready"
    except Exception as exc:  # any store failure means "not ready", never a traceback
        logger.warning("readiness check failed", extra={"error": repr(exc)})
        ok, detail = False, f"store error: {type(exc).__name__}"
    if not ok:
        return JSONResponse(Ready(ready=False, detail=detail).model_dump(), status_code=503)
    return Ready(ready=True)
