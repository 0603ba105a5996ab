"""POST /api/v1/ingest: a batch of snapshots from one or more hosts.

This route is the documented one; requests are normally answered by ``ingest/fastpath.py`` (the same
service call without the framework's per-request overhead)."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request
from starlette.requests import ClientDisconnect

from hostpulse.protocol import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE
from hostpulse.server.api.deps import StateDep
from hostpulse.server.api.models import IngestAccepted, Problem
from hostpulse.server.auth.deps import Credentials
from hostpulse.server.auth.ingest_guard import IngestDenied, ingest_host
from hostpulse.server.ingest.body import read_body
from hostpulse.server.ingest.errors import IngestError

router = APIRouter(tags=["ingest"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": (
            "One `hostpulse.v1.IngestRequest` (proto/hostpulse/v1/metrics.proto): protobuf, or "
            "JSON in the protobuf JSON mapping. `Content-Encoding: gzip`, `zstd` or none."
        ),
        "content": {
            PROTOBUF_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
            JSON_CONTENT_TYPE: {"schema": {"type": "object"}},
        },
    }
}

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": Problem, "description": "Malformed or corrupt body."},
    408: {"model": Problem, "description": "The body did not arrive within body_timeout."},
    401: {"model": Problem, "description": "No valid agent key."},
    403: {"model": Problem, "description": "A batch of another host than the key's, or a user."},
    413: {"model": Problem, "description": "Body over the size limit (sent or decompressed)."},
    415: {"model": Problem, "description": "Content-Type or Content-Encoding not supported."},
    422: {"model": Problem, "description": "Invalid content; nothing was stored."},
    429: {"model": Problem, "description": "The key's rate limit; see Retry-After."},
    503: {
        "model": Problem,
        "description": "Overloaded: nothing was stored; send again after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        },
    },
}


@router.post(
    "/ingest",
    response_model=IngestAccepted,
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    summary="Store a batch of snapshots",
)
async def ingest(request: Request, state: StateDep, _creds: Credentials) -> IngestAccepted:
    """Needs the host's agent key (``Authorization: Bearer hpk_...``); every batch must be that
    host's. Validates the whole request and stores all of it or nothing. Idempotent per
    (host, series, timestamp): samples already stored are counted as duplicates. The answer is
    sent once the data is durable."""
    try:
        host_id = await ingest_host(request.app.state, request.headers.get("authorization"))
    except IngestDenied as exc:
        raise HTTPException(exc.status, exc.reason, headers=exc.headers or None) from None
    limit = state.ingest.limits.max_body_bytes
    deadline = time.monotonic() + state.settings.body_timeout
    try:
        body = await read_body(
            request.receive, request.headers.get("content-length"), limit, deadline
        )
        if body is None:
            raise ClientDisconnect
        result = await state.ingest.ingest_body(
            body,
            request.headers.get("content-type"),
            request.headers.get("content-encoding"),
            only_host=host_id,
        )
    except IngestError as exc:
        raise HTTPException(exc.status, exc.reason, headers=exc.headers) from None
    return IngestAccepted(accepted_samples=result.accepted, duplicate_samples=result.duplicates)
