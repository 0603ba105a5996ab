"""Annotated dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hostpulse.server.state import AppState
from hostpulse.store.base import Store


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.hp
    return state


def get_store(request: Request) -> Store:
    return get_state(request).store


StateDep = Annotated[AppState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
