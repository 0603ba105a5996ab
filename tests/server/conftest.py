from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.server.testing import Clock, LiveServer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path / "data", clock, max_series_per_host=300)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
