"""What the routes share, built once by ``create_app`` and kept on ``app.state.hp``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hostpulse.server.config import ServerSettings
from hostpulse.server.ingest.service import IngestService
from hostpulse.store.base import Store


@dataclass(slots=True)
class AppState:
    settings: ServerSettings
    store: Store
    ingest: IngestService
    clock: Callable[[], float]
    """Wall clock in seconds since the epoch (injectable for tests)."""

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
