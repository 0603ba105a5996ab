"""Boards in headless Chromium against a real ``hostpulse server`` fed by ``hostpulse simulate``
(an hour of history, then live): an
editor builds a board by drag and drop, saves and reloads it, shares it read-only, and a viewer
sees it with no way to change it (boards.e2e.mjs). Saves screenshots in docs/screenshots/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from e2ekit import ROOT, Server, require_browser, simulate, stop

from hostpulse.server.testing import login

TIMEOUT_S = 240.0
HOSTS = 3
INTERVAL_S = 5.0  # history and live at the same interval: the charts draw lines, not gaps


def add_user(server: Server, admin: str, name: str, role: str) -> str:
    password = f"{role}-password-e2e"
    r = httpx.post(
        server.url + "/api/v1/users",
        json={"username": name, "password": password, "role": role},
        headers={"authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return password


def test_build_save_reload_and_share_a_board(server: Server, tmp_path: Path) -> None:
    require_browser()
    backfill = simulate(
        server, HOSTS, INTERVAL_S, tmp_path / "backfill.log", "--backfill", "1", "--duration", "0"
    )
    assert backfill.wait(120) == 0, (tmp_path / "backfill.log").read_text()[-2000:]
    live = simulate(server, HOSTS, INTERVAL_S, tmp_path / "live.log")
    try:
        run(server)
    finally:
        stop(live)


def run(server: Server) -> None:
    admin = login(server.url, "admin", server.admin_password)["access_token"]
    shots = ROOT / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    env = {
        "HP_URL": server.url,
        "HP_EDITOR": "erin",
        "HP_EDITOR_PASSWORD": add_user(server, admin, "erin", "editor"),
        "HP_VIEWER": "vic",
        "HP_VIEWER_PASSWORD": add_user(server, admin, "vic", "viewer"),
        "HP_SHOTS": str(shots),
        "HP_HOSTS": str(HOSTS),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    script = Path(__file__).with_name("boards.e2e.mjs")
    proc = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "E2E OK" in log, log
    for step in (
        "build a board by drag and drop",
        "save and reload",
        "a viewer sees it read-only",
        "375 px: the board stacks",
        "a template with a $host variable",
    ):
        assert f"STEP {step}" in log, step
    boards = httpx.get(
        server.url + "/api/v1/dashboards",
        headers={"authorization": f"Bearer {admin}"},
        timeout=30,
    ).json()
    assert sorted((b["name"], b["owner"], b["sharing"], b["widgets"]) for b in boards) == [
        ("E2E board", "erin", "view", 3),
        ("Single host", "erin", "private", 9),
    ]
