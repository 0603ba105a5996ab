"""Console and rotating-file logging with levels."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.agent.config import LogSettings
from hostpulse.agent.logging_setup import setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("hostpulse")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for h in logger.handlers:
        if h not in saved[0]:
            h.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_level_console_and_rotation(tmp_path: Path, restore_logging: None) -> None:
    console = io.StringIO()
    path = tmp_path / "log" / "agent.log"
    setup_logging(
        LogSettings(level="warning", file=str(path), max_bytes=1024, backup_count=2),
        stream=console,
    )
    log = logging.getLogger("hostpulse.agent.test")
    log.info("not shown")
    for i in range(100):
        log.warning("line %d %s", i, "x" * 40)
    assert "not shown" not in console.getvalue()
    assert "WARNING hostpulse.agent.test: line 99" in console.getvalue()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["agent.log", "agent.log.1", "agent.log.2"]  # rotated, two kept
    assert all(p.stat().st_size <= 1024 for p in path.parent.iterdir())
    assert "line 99" in path.read_text()


def test_setup_again_replaces_handlers(tmp_path: Path, restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(LogSettings(level="info"), stream=first)
    setup_logging(LogSettings(level="debug"), stream=second)
    logging.getLogger("hostpulse.x").debug("hello")
    assert first.getvalue() == ""
    assert "hello" in second.getvalue()
