"""Annotated dependency aliases for the routes (async, so FastAPI does not hop to a thread)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hostpulse.server.state import AppState
from hostpulse.store.base import Store


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.hp
    return state


async def get_store(request: Request) -> Store:
    state: AppState = request.app.state.hp
    return state.store


StateDep = Annotated[AppState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
