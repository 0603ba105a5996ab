"""Fixtures for the delivery tests: a scripted receiver and shippers over real spools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_helpers import Agent, MakeAgent, Receiver, fast_settings

from hostpulse.agent.delivery_settings import SpoolSettings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[MakeAgent]:
    agents: list[Agent] = []

    def make(url: str, *, spool: dict[str, object] | None = None, **kw: object) -> Agent:
        sp = SpoolSettings(dir=str(tmp_path / "spool"), **(spool or {}))  # type: ignore[arg-type]
        a = Agent(tmp_path / "spool", fast_settings(url, **kw), sp)
        agents.append(a)
        return a

    try:
        yield make
    finally:
        for a in agents:
            a.close(0.5)
