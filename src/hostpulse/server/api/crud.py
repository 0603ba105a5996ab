"""The five routes of a stored resource, declared once: list, create, get, replace, delete.

``add_crud_routes(router, Crud(noun="rule", plural="rules", ...))`` registers

    GET /rules                 list_rules      200 list[out]
    POST /rules                create_rule     201 out
    GET /rules/{rule_id}       get_rule        200 out
    PUT /rules/{rule_id}       replace_rule    200 out
    DELETE /rules/{rule_id}    delete_rule     204

named and shaped as if each had been written out by hand, so the OpenAPI document (operation
ids, summaries, the ``rule_id`` parameter, the request body titled ``Rule``) is the same.
"""

# No ``from __future__ import annotations`` here: the route signatures below carry per-resource
# metadata (the path parameter's name, the body dependency) from the enclosing function, and
# FastAPI resolves string annotations against the module's globals only.

import types
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Depends, Path, Response, status

ServiceT = TypeVar("ServiceT")
SpecT = TypeVar("SpecT")
OutT = TypeVar("OutT")


@dataclass(frozen=True, kw_only=True)
class Crud(Generic[ServiceT, SpecT, OutT]):
    """How the routes of one resource reach its service."""

    noun: str  # "rule": the route names (get_rule, ...) and the path parameter rule_id
    plural: str  # "rules": the path /rules and list_rules
    out: type[OutT]  # the response model of one entry
    service: Callable[..., ServiceT]  # the dependency that yields the service
    # the dependency that reads the request body; its parameter names the body (``rule: Rule``)
    body: Callable[..., Awaitable[SpecT]]
    errors: Callable[[], AbstractContextManager[object]]  # turns service errors into HTTP ones
    list_all: Callable[[ServiceT], list[OutT]]
    get: Callable[[ServiceT, str], OutT]
    save: Callable[[ServiceT, SpecT, str | None], Awaitable[OutT]]  # id None: create
    delete: Callable[[ServiceT, str], Awaitable[None]]


def add_crud_routes(router: APIRouter, crud: Crud[ServiceT, SpecT, OutT]) -> None:
    """Register the five routes of ``crud`` on ``router``, in the order listed above."""
    Id = Annotated[str, Path(alias=f"{crud.noun}_id")]
    service_dep, body_dep = Depends(crud.service), Depends(crud.body)

    async def list_all(service: Annotated[ServiceT, service_dep]) -> list[OutT]:
        return crud.list_all(service)

    async def create(
        body: Annotated[SpecT, body_dep], service: Annotated[ServiceT, service_dep]
    ) -> OutT:
        with crud.errors():
            return await crud.save(service, body, None)

    async def get(entry_id: Id, service: Annotated[ServiceT, service_dep]) -> OutT:
        with crud.errors():
            return crud.get(service, entry_id)

    async def replace(
        entry_id: Id, body: Annotated[SpecT, body_dep], service: Annotated[ServiceT, service_dep]
    ) -> OutT:
        with crud.errors():
            return await crud.save(service, body, entry_id)

    async def delete(entry_id: Id, service: Annotated[ServiceT, service_dep]) -> Response:
        with crud.errors():
            await crud.delete(service, entry_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    many, one = f"/{crud.plural}", f"/{crud.plural}/{{{crud.noun}_id}}"
    routes: list[tuple[str, str, str, Callable[..., Awaitable[object]], object, int]] = [
        (many, "GET", f"list_{crud.plural}", list_all, types.GenericAlias(list, (crud.out,)), 200),
        (many, "POST", f"create_{crud.noun}", create, crud.out, status.HTTP_201_CREATED),
        (one, "GET", f"get_{crud.noun}", get, crud.out, 200),
        (one, "PUT", f"replace_{crud.noun}", replace, crud.out, 200),
        (one, "DELETE", f"delete_{crud.noun}", delete, None, status.HTTP_204_NO_CONTENT),
    ]
    for path, method, name, endpoint, model, code in routes:
        router.add_api_route(
            path, endpoint, methods=[method], name=name, response_model=model, status_code=code
        )
