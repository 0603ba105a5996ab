"""/dashboards: custom boards (list, create, read, save, delete, export, import, templates).

Thin routes over ``hostpulse.server.dashboards.service.DashboardService``
(``request.app.state.dashboards``); who may do what is decided there (its docstring, and
docs/security.md "Dashboards")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field

from hostpulse.server.api.models import Problem
from hostpulse.server.auth.deps import ViewerDep
from hostpulse.server.auth.principals import User
from hostpulse.server.dashboards.exceptions import DashboardError
from hostpulse.server.dashboards.repository import BoardRow
from hostpulse.server.dashboards.schema import BoardExport, BoardIn, BoardSpec
from hostpulse.server.dashboards.service import DashboardService, can_edit, can_manage

router = APIRouter(
    prefix="/dashboards",
    tags=["dashboards"],
    responses={
        403: {"model": Problem, "description": "Your role or the board's sharing forbids it."},
        404: {"model": Problem, "description": "No such dashboard (or not shared with you)."},
    },
)
BoardId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


def get_dashboards(request: Request) -> DashboardService:
    service = getattr(request.app.state, "dashboards", None)
    if not isinstance(service, DashboardService):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "dashboards are not running")
    return service


Boards = Annotated[DashboardService, Depends(get_dashboards)]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except DashboardError as exc:
        raise HTTPException(exc.status, exc.reason) from None


class BoardSummary(BaseModel):
    id: str
    name: str
    owner: str
    sharing: Literal["private", "view", "edit"]
    version: int
    created_ms: int
    updated_ms: int
    widgets: int = Field(description="How many widgets it has.")
    can_edit: bool = Field(description="Whether the caller may save it.")
    can_manage: bool = Field(description="Whether the caller may delete it or change sharing.")

    @classmethod
    def of(cls, row: BoardRow, user: User) -> BoardSummary:
        return cls(**_common(row, user), widgets=len(row.spec.get("widgets", [])))


class BoardOut(BoardSummary):
    spec: BoardSpec

    @classmethod
    def of(cls, row: BoardRow, user: User) -> BoardOut:
        return cls(
            **_common(row, user),
            widgets=len(row.spec.get("widgets", [])),
            spec=BoardSpec.model_validate(row.spec),
        )


def _common(row: BoardRow, user: User) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "owner": row.owner,
        "sharing": row.sharing,
        "version": row.version,
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
        "can_edit": can_edit(user, row),
        "can_manage": can_manage(user, row),
    }


class TemplateOut(BoardExport):
    id: str = Field(description="Template id: fleet, host or changed.")


_CREATED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "You own the most dashboards one user may have."},
    422: {"description": "The board breaks a bound (widgets, name, size ...); detail names it."},
}


@router.get("", response_model=list[BoardSummary], summary="Dashboards you can see")
async def list_dashboards(user: ViewerDep, boards: Boards) -> list[BoardSummary]:
    """Your own boards and every shared one (admins: every board), by name."""
    return [BoardSummary.of(r, user) for r in await boards.list(user)]


@router.post("", response_model=BoardOut, status_code=status.HTTP_201_CREATED, responses=_CREATED)
async def create_dashboard(body: BoardIn, user: ViewerDep, boards: Boards) -> BoardOut:
    """A new board owned by you (editor or admin)."""
    with _errors():
        return BoardOut.of(await boards.create(user, body), user)


@router.get("/templates", response_model=list[TemplateOut], summary="Built-in boards")
async def list_templates(_: ViewerDep, boards: Boards) -> list[TemplateOut]:
    """The built-in boards; create one with ``POST /dashboards/import``."""
    return [TemplateOut(id=key, **doc.model_dump()) for key, doc in boards.templates().items()]


@router.post(
    "/import",
    response_model=BoardOut,
    status_code=status.HTTP_201_CREATED,
    responses=_CREATED,
    summary="Create a board from an exported file or a template",
)
async def import_dashboard(body: BoardExport, user: ViewerDep, boards: Boards) -> BoardOut:
    """The board is new, private and yours, whoever exported it."""
    with _errors():
        return BoardOut.of(await boards.import_(user, body), user)


@router.get("/{board_id}", response_model=BoardOut)
async def get_dashboard(board_id: BoardId, user: ViewerDep, boards: Boards) -> BoardOut:
    with _errors():
        return BoardOut.of(await boards.get(user, board_id), user)


@router.put(
    "/{board_id}",
    response_model=BoardOut,
    responses={409: {"model": Problem, "description": "Saved by someone else since `version`."}},
)
async def replace_dashboard(
    board_id: BoardId, body: BoardIn, user: ViewerDep, boards: Boards
) -> BoardOut:
    """Save the board. Send the ``version`` you loaded: when someone saved since, the answer
    is 409 and nothing changes (without it, the last save wins)."""
    with _errors():
        return BoardOut.of(await boards.save(user, board_id, body), user)


@router.delete("/{board_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dashboard(board_id: BoardId, user: ViewerDep, boards: Boards) -> Response:
    with _errors():
        await boards.delete(user, board_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{board_id}/export", response_model=BoardExport, summary="The board as a file")
async def export_dashboard(
    board_id: BoardId, user: ViewerDep, boards: Boards, response: Response
) -> BoardExport:
    """A JSON file that ``POST /dashboards/import`` reads back (on this or another server)."""
    with _errors():
        doc = await boards.export(user, board_id)
    response.headers["Content-Disposition"] = f'attachment; filename="dashboard-{board_id}.json"'
    return doc
