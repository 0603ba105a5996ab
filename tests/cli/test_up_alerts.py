"""`hostpulse up --alerts-config`: the rules of an alerts.yml are loaded by the server that `up`
starts, and a bad file stops `up` before anything starts, naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from cli_process import CliProcess, run_cli

from hostpulse.server.testing import login

PASSWORD = "up-alerts-test-password"
GOOD = """
create_default_rules: false
rules:
  - id: from-the-file
    metric: cpu_busy_percent
    op: ">"
    warning: 99
    for: 1m
"""


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    return {**base, "HOSTPULSE_ADMIN_PASSWORD": PASSWORD}


def test_up_refuses_a_bad_alerts_file_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "alerts.yml"
    bad.write_text("rules:\n  - id: x\n    metric: no_such_metric\n    warning: 1\n")
    result = run_cli(
        ["up", "--port", "0", "--data-dir", str(tmp_path / "d"), "--alerts-config", str(bad)],
        env=env(),
    )
    assert result.returncode == 2
    assert "invalid alerts configuration" in result.stderr and "no_such_metric" in result.stderr


def test_up_loads_the_rules_of_an_alerts_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(GOOD)
    args = ["up", "--port", "0", "--data-dir", str(tmp_path / "d"), "--alerts-config", str(path)]
    with CliProcess([*args, "--log-level", "warning"], env=env()) as up:
        url = up.url()
        token = login(url, "admin", PASSWORD)["access_token"]
        r = httpx.get(
            f"{url}/api/v1/alerts/rules",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        rules = {entry["rule"]["id"]: entry for entry in r.json()}
        assert set(rules) == {"from-the-file"}
        assert rules["from-the-file"]["source"] == "config"
