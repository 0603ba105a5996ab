"""Custom metrics end to end: a textfile-collector file and an exec plugin on the agent's side
show up in the real server's history API and fire an alert rule written on them."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from system_helpers import (
    ADMIN_PASSWORD,
    HOST_ID,
    enrollment_token,
    free_port,
    start_agent,
    start_server,
)


def get(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_for(what: str, fetch: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = fetch()
        except urllib.error.HTTPError as exc:
            assert exc.code == 404, exc  # the host is unknown until its first batch
            got = None
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_textfile_and_plugin_metrics_reach_history_and_alerts(tmp_path: Path) -> None:
    from hostpulse.server.testing import login

    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    (textfiles / "backup.prom").write_text(
        "# HELP backup_age_seconds Seconds since the last good backup.\n"
        "# TYPE backup_age_seconds gauge\n"
        'backup_age_seconds{job="nightly",target="db"} 90000\n'
        "this line is not prometheus text\n"
    )
    plugin = tmp_path / "queue_plugin.py"
    plugin.write_text("print('queue_depth{queue=\"mail\"} 42')\n")
    alerts = tmp_path / "alerts.yml"
    alerts.write_text(
        "create_default_rules: false\n"
        "evaluation_interval: 1s\n"
        "rules:\n"
        "  - id: backup-stale\n"
        "    metric: custom:backup_age_seconds\n"
        "    labels: {job: nightly}\n"
        '    op: ">"\n'
        "    critical: 86400\n"
        "  - id: queue-long\n"
        "    metric: custom:queue_depth\n"
        '    op: ">="\n'
        "    warning: 40\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(
        tmp_path / "data", port, tmp_path / "server.log", "--alerts-config", str(alerts)
    )
    agent = None
    try:
        agent = start_agent(
            url,
            tmp_path / "spool",
            tmp_path / "agent.log",
            enroll=enrollment_token(url),
            HOSTPULSE_CUSTOM__TEXTFILE_DIR=str(textfiles),
            HOSTPULSE_CONTAINERS__ENABLED="false",
            HOSTPULSE_CONFIG=str(_plugin_config(tmp_path, plugin)),
        )
        admin = login(url, "admin", ADMIN_PASSWORD)["access_token"]
        base = f"{url}/api/v1/hosts/{HOST_ID}/metrics"

        def series(metric: str, **labels: str) -> list[dict[str, Any]]:
            q = urllib.parse.urlencode({f"label.{k}": v for k, v in labels.items()})
            found = get(f"{base}/{urllib.parse.quote(metric)}/history?{q}", admin)["series"]
            return [s for s in found if s["points"]]

        backup = wait_for("the textfile metric", lambda: series("custom:backup_age_seconds"))
        assert backup[0]["labels"] == {"job": "nightly", "target": "db"}
        assert {p[1] if isinstance(p, list) else p["value"] for p in backup[0]["points"]} == {
            90000.0
        }
        queue = wait_for("the plugin metric", lambda: series("custom:queue_depth", queue="mail"))
        assert queue[0]["labels"] == {"queue": "mail"}

        def active() -> list[tuple[str, str]]:
            found = get(f"{url}/api/v1/alerts/active", admin)
            return sorted((a["rule_id"], a["host"]) for a in found)

        fired = wait_for("both alerts", lambda: len(active()) == 2 and active())
        assert fired == [("backup-stale", HOST_ID), ("queue-long", HOST_ID)]
        # the bad line was logged with its text and skipped; the rest of the file was used
        assert "this line is not prometheus text" in agent.output()
    finally:
        if agent is not None:
            agent.kill()
        server.kill()


def _plugin_config(tmp_path: Path, plugin: Path) -> Path:
    config = tmp_path / "agent.yml"
    config.write_text(
        "custom:\n"
        "  plugin_interval: 1\n"
        "  plugins:\n"
        f"    queue: {json.dumps(f'{sys.executable} {plugin}')}\n"
    )
    return config
