"""Fixtures of the whole-system tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ekit import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", tmp_path / "server.log", {"HOSTPULSE_LIVE_HEARTBEAT": "2"})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
