"""``hostpulse up``: the server and this machine's agent in one process."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from system_helpers import ADMIN_PASSWORD, HOSTPULSE, clean_env

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool
from hostpulse.server.testing import login

URL = re.compile(r"hostpulse is up: (http://\S+)")


def test_up_runs_the_server_with_the_local_agent_shipping_to_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [HOSTPULSE, "up", "--port", "0", "--data-dir", str(data), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(PYTHONUNBUFFERED="1", HOSTPULSE_ADMIN_PASSWORD=ADMIN_PASSWORD),
    )
    assert proc.stdout is not None
    try:
        url = ""
        deadline = time.monotonic() + 60
        while not url:
            assert time.monotonic() < deadline, "no URL printed"
            if select.select([proc.stdout], [], [], 1.0)[0]:
                line = proc.stdout.readline()
                assert line, f"up exited with {proc.wait()}"
                m = URL.search(line)
                url = m.group(1) if m else ""
        token = login(url, "admin", ADMIN_PASSWORD)["access_token"]
        hosts: list[dict[str, object]] = []
        while not hosts:
            assert time.monotonic() < deadline, "the local agent never reached the server"
            req = urllib.request.Request(
                f"{url}/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(req, timeout=5) as r:
                hosts = json.loads(r.read())
            time.sleep(0.2)
        assert hosts[0]["hostname"] == os.uname().nodename
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
    assert proc.returncode == 0  # a clean stop: the local agent was stopped and synced
    with Spool(SpoolSettings(dir=str(data / "spool"))) as spool:
        counters = spool.stats().counters
    assert counters["sent"] >= 1 and counters.get("lost_corrupt", 0) == 0
