"""The Dockerfile builds with ``buildah bud --isolation chroot`` on a base image made from
Debian's packages (scripts/base_image.sh, cached in buildah's storage between runs), offline
(pip gets the wheels this machine has, through a build volume); the server runs inside it as
the unprivileged user and answers /api/v1/ready from outside, and so does the image's
HEALTHCHECK command. Building takes minutes, hence slow; it is part of the suite."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deploykit import ROOT, run

BASE = "localhost/hostpulse-base:bookworm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def image(tmp_path: Path) -> Iterator[str]:
    run(["bash", ROOT / "scripts" / "base_image.sh"], timeout=1800)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "-q", "-w", wheels, f"{ROOT}[server]"], timeout=1800)
    run([*pip, "download", "-q", "-d", wheels, "hatchling==1.33.0"], timeout=600)
    tag = f"localhost/hostpulse-test:{os.getpid()}"
    run(
        [
            "buildah", "bud", "--isolation", "chroot", "--format", "docker", "--quiet",
            "--volume", f"{wheels}:/wheels:ro",
            "--build-arg", f"BASE={BASE}",
            "--build-arg", "PIP_ARGS=--no-index --find-links /wheels",
            "-t", tag, "-f", ROOT / "Dockerfile", ROOT,
        ],
        timeout=1800,
    )  # fmt: skip
    try:
        yield tag
    finally:
        run(["buildah", "rmi", tag], check=False, timeout=120)


@pytest.mark.slow
def test_image_runs_the_server_and_reports_ready(image: str) -> None:
    inspect = json.loads(run(["buildah", "inspect", "--type", "image", image]).stdout)
    config = inspect["Docker"]["config"]
    assert config["User"] == "hostpulse"
    assert config["Entrypoint"] == ["hostpulse"] and config["Cmd"] == ["server"]
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD" and "/api/v1/ready" in health[-1]

    ctr = run(["buildah", "from", image]).stdout.strip()
    port = free_port()
    env = ["--env", f"HOSTPULSE_PORT={port}", "--env", "HOSTPULSE_ADMIN_PASSWORD=container-pw-1234"]
    server = subprocess.Popen(
        ["buildah", "run", "--isolation", "chroot", *env, ctr, "--", "hostpulse", "server"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        if ready is None or ready.status_code != 200:
            output = server.stdout.read() if server.poll() is not None and server.stdout else ""
            raise AssertionError(f"not ready: {ready!r} {output}")
        assert ready.json()["ready"] is True
        # the image's own health check, run inside the container
        check = run(["buildah", "run", "--isolation", "chroot", *env, ctr, "--", *health[1:]])
        assert check.returncode == 0
        whoami = run(["buildah", "run", "--isolation", "chroot", ctr, "--", "id", "-un"])
        assert whoami.stdout.strip() == "hostpulse"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
        run(["buildah", "rm", ctr], check=False, timeout=120)
