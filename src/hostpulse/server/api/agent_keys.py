"""/agent-keys and /enrollment-tokens (admin), /agent/enroll and /agent/rotate (agents)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from hostpulse.server.api.auth_models import (
    AgentKeyOut,
    EnrollIn,
    EnrollmentIn,
    EnrollmentOut,
    HostKeyOut,
    NewEnrollmentOut,
    NewKeyOut,
)
from hostpulse.server.api.models import Problem
from hostpulse.server.auth.agent_keys import enroll_command
from hostpulse.server.auth.deps import NO_STORE, AdminDep, AgentDep, AuthDep, http_error
from hostpulse.server.auth.exceptions import AuthError
from hostpulse.server.install import install_command

router = APIRouter(tags=["agent keys"])
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The row's id (as listed).")]
_NO_KEY: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such key."}
}
_NO_TOKEN: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such enrollment token."}
}
_ENROLL: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Unknown, expired or used enrollment token."},
    403: {
        "model": Problem,
        "description": "The token is bound to another host, or has enrolled all the hosts it "
        "allows (max_hosts), or the server holds max_hosts enrolled hosts.",
    },
    409: {
        "model": Problem,
        "description": "The host has a live key and the token is not bound to it.",
    },
}


def _fail(exc: AuthError) -> HTTPException:
    return http_error(exc)


@router.get("/agent-keys", response_model=list[AgentKeyOut], summary="Every host's agent key")
async def list_keys(_: AdminDep, auth: AuthDep) -> list[AgentKeyOut]:
    """Never the key or its hash: ``prefix`` is enough to recognise one."""
    return [AgentKeyOut.of(k) for k in await auth.agents.list_keys()]


@router.post(
    "/agent-keys/{key_id}/revoke", status_code=status.HTTP_204_NO_CONTENT, responses=_NO_KEY
)
async def revoke_key(key_id: RowId, _: AdminDep, auth: AuthDep) -> Response:
    """The key stops working at its next request."""
    try:
        await auth.agents.revoke(key_id)
    except AuthError as exc:
        raise _fail(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/agent-keys/{key_id}/rotate",
    response_model=NewKeyOut,
    responses=_NO_KEY,
    dependencies=NO_STORE,
)
async def rotate_key(key_id: RowId, _: AdminDep, auth: AuthDep) -> NewKeyOut:
    """A new key for the same host (shown once); the old one stops working."""
    try:
        new = await auth.agents.rotate(key_id)
    except AuthError as exc:
        raise _fail(exc) from None
    return NewKeyOut(id=new.id, host_id=new.host_id, key=new.key)


@router.get("/enrollment-tokens", response_model=list[EnrollmentOut])
async def list_enrollments(_: AdminDep, auth: AuthDep) -> list[EnrollmentOut]:
    agents = auth.agents
    return [EnrollmentOut.of(e, agents.max_hosts_of(e)) for e in await agents.list_enrollments()]


@router.post(
    "/enrollment-tokens",
    response_model=NewEnrollmentOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=NO_STORE,
)
async def create_enrollment(
    body: EnrollmentIn, request: Request, _: AdminDep, auth: AuthDep
) -> NewEnrollmentOut:
    """A token a host exchanges for its agent key (shown once, with the command to run)."""
    try:
        row, token = await auth.agents.create_enrollment(
            body.host_id, body.ttl_seconds, body.single_use, body.max_hosts
        )
    except AuthError as exc:
        raise _fail(exc) from None
    server = str(request.base_url).rstrip("/")
    return NewEnrollmentOut(
        id=row.id,
        token=token,
        host_id=row.host_id,
        expires_at=row.expires_ms,
        single_use=row.single_use,
        max_hosts=auth.agents.max_hosts_of(row),
        command=enroll_command(server, token, row.host_id),
        install_command=install_command(server, token, row.host_id),
    )


@router.delete(
    "/enrollment-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NO_TOKEN
)
async def delete_enrollment(token_id: RowId, _: AdminDep, auth: AuthDep) -> Response:
    try:
        await auth.agents.delete_enrollment(token_id)
    except AuthError as exc:
        raise _fail(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/agent/enroll",
    response_model=HostKeyOut,
    status_code=status.HTTP_201_CREATED,
    responses=_ENROLL,
    dependencies=NO_STORE,
)
async def enroll(body: EnrollIn, auth: AuthDep) -> HostKeyOut:
    """Exchange an enrollment token for the host's agent key (no other authentication).
    401: unknown, expired or used token; 403: the token is bound to another host, has
    enrolled all the hosts it allows (max_hosts), or the server holds max_hosts enrolled
    hosts already; 409: the host has a live key and the token is not bound to it (an
    unbound or multi-use token cannot replace an enrolled host's key; the token is not used
    up)."""
    try:
        new = await auth.agents.enroll(body.token, body.host_id)
    except AuthError as exc:
        raise _fail(exc) from None
    return HostKeyOut(host_id=new.host_id, key=new.key)


@router.post("/agent/rotate", response_model=HostKeyOut, dependencies=NO_STORE)
async def rotate_own(agent: AgentDep, auth: AuthDep) -> HostKeyOut:
    """A new key for the calling agent's host; the key used for this call stops working."""
    new = await auth.agents.issue(agent.host_id)
    return HostKeyOut(host_id=new.host_id, key=new.key)
