"""Fixtures of the security tests: a real server whose alert channels may target loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.server.testing import Clock, LiveServer

ALERTS_YML = """\
allow_networks: ["127.0.0.0/8"]
create_default_rules: false
"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("secured")
    config = root / "alerts.yml"
    config.write_text(ALERTS_YML)
    srv = LiveServer(root / "data", Clock(), alerts_config=config)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
