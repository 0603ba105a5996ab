"""Item 1 of the deployment work: the base distribution is the agent. Installed from its wheel
into a fresh venv it pulls none of the server's packages, runs ``hostpulse agent --once``, and
the server's commands say which extra to install instead of failing with a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploykit import SERVER_PACKAGES, build_wheel, clean_env, fresh_venv, installed, run


@pytest.mark.slow
def test_agent_only_install(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    bin_dir = fresh_venv(tmp_path / "venv")
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel])

    names = installed(bin_dir)
    assert "hostpulse" in names and "psutil" in names
    assert not names & SERVER_PACKAGES, sorted(names & SERVER_PACKAGES)

    env = clean_env()
    once = run([bin_dir / "hostpulse", "agent", "--once", "--format", "json"], env=env)
    doc = json.loads(once.stdout)
    assert doc["host"]["host_id"]
    assert doc["metrics"], "the snapshot has no metrics"
    assert run([bin_dir / "hostpulse", "version"], env=env).stdout.strip()

    for command in (["server", "--port", "8400"], ["up"], ["token", "create", "--ttl", "1h"]):
        result = run([bin_dir / "hostpulse", *command], env=env, check=False)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "pip install 'hostpulse[server]'" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
