"""The dashboard in headless Chromium against a real server fed by ``hostpulse simulate``:
sign-in, fleet, alerts (a rule made in the editor fires and is acknowledged; a channel's test
send reaches a real receiver), settings (a viewer added, an enrollment command), logout, what a
viewer may not see, live host chart, 7-day history, reconnect after a server restart, themes,
Korean, phone width. Takes the screenshots in docs/screenshots/."""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path

import httpx
from conftest import Receiver
from e2ekit import ROOT, Server, require_browser, simulate, stop

HOSTS = 6
INTERVAL_S = 1.0
TIMEOUT_S = 240.0


def test_dashboard_end_to_end(server: Server, receiver: Receiver, tmp_path: Path) -> None:
    require_browser()
    # a day of coarse history first (rollups for the 7-day view), then live every second
    backfill = simulate(
        server, HOSTS, 60, tmp_path / "backfill.log", "--backfill", "24", "--duration", "0"
    )
    assert backfill.wait(120) == 0, (tmp_path / "backfill.log").read_text()[-2000:]
    live = simulate(server, HOSTS, INTERVAL_S, tmp_path / "live.log")
    try:
        hosts = httpx.get(server.url + "/api/v1/hosts", headers=server.headers(), timeout=10)
        hosts = hosts.json()
        assert len(hosts) == HOSTS
        names = sorted(h["hostname"] for h in hosts)
        shots = ROOT / "docs" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        env = {
            "HP_URL": server.url,
            "HP_USER": "admin",
            "HP_PASSWORD": server.admin_password,
            "HP_HOSTS": ",".join(names),
            "HP_HOST_ID": hosts[0]["host_id"],
            "HP_INTERVAL_MS": str(int(INTERVAL_S * 1000)),
            "HP_SHOTS": str(shots),
            "HP_RECEIVER": receiver.url,
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        }
        log = run_browser(env, server)
        assert "E2E OK" in log, log
        for name in (
            "sign in: a wrong password is refused, the admin password gets in",
            "alerts: the rule fires and shows on the Alerts page",
            "settings: the admin adds a viewer",
            "logout: back to the login page, and the app stays closed",
            "viewer: sees alerts but no editor, no acknowledge, no Settings",
            "history: 7 days draws from a rollup tier",
        ):
            assert f"STEP {name}" in log, name
        # "send test" on the Alerts page reached the receiver
        tests = [b for b in receiver.bodies if b.get("kind") == "test"]
        assert tests, receiver.bodies
    finally:
        stop(live)


def run_browser(env: dict[str, str], server: Server) -> str:
    """Run the Node script; restart the server when it says RESTART. Returns its output."""
    script = Path(__file__).with_name("dashboard.e2e.mjs")
    with subprocess.Popen(
        ["node", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    ) as proc:
        return _drive(proc, server)


def _drive(proc: subprocess.Popen[str], server: Server) -> str:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    try:
        while True:
            line = lines.get(timeout=TIMEOUT_S)
            if line is None:
                break
            out.append(line)
            if line.strip() == "RESTART":
                server.restart()
                assert proc.stdin is not None
                proc.stdin.write("restarted\n")
                proc.stdin.flush()
        assert proc.wait(30) == 0, "".join(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return "".join(out)
