"""Whole-system helpers: a real ``hostpulse server`` subprocess on a free loopback port and
``hostpulse simulate`` feeding it."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hostpulse.server.testing import enrollment_token, login

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT_S = 60.0  # a loaded CI machine (load 18 on 2 cores) took over 30 s


def cli() -> str:
    found = Path(sys.executable).with_name("hostpulse")
    return str(found) if found.exists() else (shutil.which("hostpulse") or "hostpulse")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class Server:
    """``hostpulse server`` as a subprocess; ``restart()`` keeps port and data."""

    data_dir: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    admin_password: str = field(default_factory=lambda: "e2e-" + secrets.token_urlsafe(12))
    """The first admin's password (HOSTPULSE_ADMIN_PASSWORD): the E2E signs in with it."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [cli(), "server", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        with self.log.open("ab") as out:
            env = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": self.admin_password, **self.env}
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def headers(self) -> dict[str, str]:
        """The admin's Authorization header (signed in through the API)."""
        token = login(self.url, "admin", self.admin_password)["access_token"]
        return {"authorization": f"Bearer {token}"}

    def fleet_token(self) -> str:
        """A multi-use enrollment token for ``hostpulse simulate --enroll-token``. A host that
        is enrolled already is re-enrolled only after an admin revoked its key (a multi-use
        token cannot take a host over), so the live keys are revoked first."""
        headers = self.headers()
        keys = httpx.get(f"{self.url}/api/v1/agent-keys", headers=headers, timeout=30)
        for key in keys.json():
            if key["revoked_at"] is None:
                revoke = f"{self.url}/api/v1/agent-keys/{key['id']}/revoke"
                httpx.post(revoke, headers=headers, timeout=30).raise_for_status()
        return enrollment_token(self.url, headers["authorization"].split()[1], single_use=False)


def simulate(
    server: Server, hosts: int, interval: float, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``hostpulse simulate``: each simulated host enrolls with a multi-use token."""
    cmd = [cli(), "simulate", "--hosts", str(hosts), "--interval", str(interval)]
    cmd += ["--server", server.url, "--enroll-token", server.fleet_token(), *extra]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def require_browser() -> None:
    missing = [p for p in (CHROMIUM,) if not Path(p).exists()]
    if not (WEB / "node_modules" / "playwright-core").exists():
        missing.append("web/node_modules (run npm ci in web/)")
    if missing:
        pytest.fail(f"E2E needs {', '.join(missing)} (scripts/test.sh installs them)")
