""" "Add host" end to end: the install script the server serves, run in a fake root (DESTDIR)
against a real server, installs the agent from the server's wheel, enrolls the host, writes a
unit that ``systemd-analyze verify`` accepts and enables it; the installed agent then ships to
the server; running the script again upgrades in place and keeps the key."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from deploykit import ROOT, SERVER_PACKAGES, clean_env, installed, run

from hostpulse.server.testing import LiveServer

UNIT = "hostpulse-agent.service"


def read_env_file(path: Path) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def verify_unit(unit: Path, root: Path, tmp: Path) -> None:
    """``systemd-analyze verify`` on the unit as the fake root holds it: the paths it names are
    moved under ``root`` (verify checks that ExecStart's program exists)."""
    copy = tmp / unit.name
    copy.write_text(unit.read_text().replace("/opt/hostpulse/", f"{root}/opt/hostpulse/"))
    result = run(["systemd-analyze", "verify", copy], check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def wait_for_host(srv: LiveServer, host_id: str, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{srv.url}/api/v1/hosts", headers=srv.headers("viewer"), timeout=10)
        r.raise_for_status()
        for host in r.json():
            if host["host_id"] == host_id:
                return dict(host)
        time.sleep(0.5)
    raise AssertionError(f"{host_id} never reached the server")


@pytest.mark.slow
def test_add_host_in_one_command(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with LiveServer(tmp_path / "data") as srv:
        script = tmp_path / "agent.sh"
        script.write_text(httpx.get(f"{srv.url}/install/agent.sh", timeout=30).text)
        env = clean_env(DESTDIR=str(root))

        # without a key and without a token it stops before installing anything
        refused = run(["sh", script, "--host", "web-1"], env=env, check=False)
        assert refused.returncode == 2
        assert "--token" in refused.stderr
        assert not (root / "opt").exists()

        token = srv.enrollment_token("web-1")
        first = run(
            ["sh", script, "--host", "web-1", "--label", "role=web"],
            env={**env, "HOSTPULSE_ENROLL_TOKEN": token},
        )
        assert "enrolling web-1" in first.stdout

        venv_bin = root / "opt/hostpulse/venv/bin"
        assert not installed(venv_bin) & SERVER_PACKAGES
        unit = root / "etc/systemd/system" / UNIT
        assert unit.read_text() == (ROOT / "deploy/systemd" / UNIT).read_text()
        wanted = root / "etc/systemd/system/multi-user.target.wants" / UNIT
        assert os.readlink(wanted) == f"/etc/systemd/system/{UNIT}"
        verify_unit(unit, root, tmp_path)

        env_file = root / "etc/hostpulse/agent.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        settings = read_env_file(env_file)
        assert settings == {
            "HOSTPULSE_SHIPPER__SERVER": srv.url,
            "HOSTPULSE_HOST_ID": "web-1",
            "HOSTPULSE_LABELS": "role=web",
        }
        assert token not in env_file.read_text()
        key = root / "var/lib/hostpulse-agent/agent.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        key_text = key.read_text()

        # the installed agent, as its unit runs it (paths under the fake root), ships
        state = root / "var/lib/hostpulse-agent"
        agent_env = clean_env(
            **settings,
            HOSTPULSE_SHIPPER__KEY_FILE=str(key),
            HOSTPULSE_SPOOL__DIR=str(state / "spool"),
            HOSTPULSE_INTERVAL="1",
        )
        agent = subprocess.Popen(
            [venv_bin / "hostpulse", "agent", "--config", root / "etc/hostpulse/agent.yml"],
            env=agent_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            host = wait_for_host(srv, "web-1")
        finally:
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, err
        assert host["labels"] == {"role": "web"}

        # again, as an upgrade, with no option at all: no token needed; the key, the host id,
        # the labels and the unit stay
        again = run(["sh", script], env=env)
        assert "enrolled already" in again.stdout
        assert read_env_file(env_file) == settings
        assert key.read_text() == key_text
        assert unit.read_text() == (ROOT / "deploy/systemd" / UNIT).read_text()
