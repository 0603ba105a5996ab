"""GET /install/agent.sh and /install/hostpulse-<version>-py3-none-any.whl: what a new host
downloads to install the agent (public, like /api/v1/enroll: a host has no credentials yet;
both hold only the open-source package and this server's URL, never a token)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, PlainTextResponse

from hostpulse.server.api.models import Problem
from hostpulse.server.install import AgentWheel, InstallError, agent_script, wheel_filename

router = APIRouter(prefix="/install", tags=["install"])
SCRIPT_TYPE = "text/x-shellscript"


@router.get(
    "/agent.sh",
    response_class=PlainTextResponse,
    summary="The agent's install script, for: curl -fsSL SERVER/install/agent.sh | sudo sh -s --",
    responses={
        200: {"content": {SCRIPT_TYPE: {"schema": {"type": "string"}}}},
        400: {"model": Problem, "description": "The request's Host cannot go into a script."},
    },
)
async def install_script(request: Request) -> PlainTextResponse:
    try:
        script = agent_script(str(request.base_url))
    except InstallError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return PlainTextResponse(script, media_type=f"{SCRIPT_TYPE}; charset=utf-8")


@router.get(
    "/{filename}",
    response_class=FileResponse,
    summary="The agent's wheel (this server's version of hostpulse, without the server extra)",
    responses={
        200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        404: {"model": Problem, "description": "Not this server's wheel file name."},
        503: {"model": Problem, "description": "The wheel cannot be built here."},
    },
)
async def agent_wheel(request: Request, filename: str) -> FileResponse:
    if filename != wheel_filename():
        raise HTTPException(status_code=404, detail=f"this server serves {wheel_filename()}")
    wheel: AgentWheel = request.app.state.agent_wheel
    try:
        path = await asyncio.to_thread(wheel.path)
    except (InstallError, OSError) as exc:
        raise HTTPException(status_code=503, detail=f"cannot build the wheel: {exc}") from None
    return FileResponse(path, media_type="application/zip", filename=filename)
