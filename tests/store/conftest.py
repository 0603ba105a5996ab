"""Fixtures for store tests: a real store on SQLite files in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storekit import FakeClock

from hostpulse.store import SQLiteStore, open_store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    s = open_store(tmp_path / "data", clock=clock)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
