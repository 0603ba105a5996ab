"""`hostpulse server` as a user runs it: a subprocess that prints its URL and serves."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from cli_process import CLI, CliProcess, run_cli
from wire import post_ingest

from hostpulse.protocol import IngestRequest, codec
from hostpulse.server.testing import agent_key, login
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile

ADMIN_PASSWORD = "cli-test-" + os.urandom(8).hex()
ENV = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD}


def _admin(url: str) -> dict[str, str]:
    return {"authorization": f"Bearer {login(url, 'admin', ADMIN_PASSWORD)['access_token']}"}


def test_server_command_prints_its_url_and_serves(tmp_path: Path) -> None:
    args = ["server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--log-level", "warning"]
    with CliProcess(args, ENV) as server:
        url = server.url()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/api/v1/ready", timeout=10).json()["ready"] is True
        assert httpx.get(f"{url}/api/v1/hosts", headers=_admin(url), timeout=10).json() == []
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert any((tmp_path / "d").iterdir())


def test_bad_settings_name_the_key_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "HOSTPULSE_RETENTION_RAW": "forever"}
    r = run_cli(["server", "--data-dir", str(tmp_path)], env)
    assert r.returncode == 2
    assert "HOSTPULSE_RETENTION_RAW" in r.stderr and "forever" in r.stderr
    r2 = run_cli(["server", "--retention-hour", "-5d"])
    assert r2.returncode == 2 and "retention_hour" in r2.stderr


@pytest.mark.parametrize("command", ["server", "up"])
def test_unusable_settings_name_the_key_without_a_traceback(tmp_path: Path, command: str) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    cases = [
        (["--log-level", "loud"], "HOSTPULSE_LOG_LEVEL (log_level)"),
        (["--data-dir", str(a_file)], "HOSTPULSE_DATA_DIR (data_dir): cannot create"),
        (["--port", port], f"cannot listen on 127.0.0.1:{port}: Address already in use"),
        (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid"),
    ]
    if command == "server":
        # nothing listens on port 1: the database is checked before the server starts
        bad_db = "postgresql://postgres@127.0.0.1:1/hp"
        cases.append((["--database-url", bad_db], "HOSTPULSE_DATABASE_URL"))
    try:
        for args, message in cases:
            r = subprocess.run(
                [*CLI, command, "--port", "0", "--data-dir", str(tmp_path / "d"), *args],
                env={**ENV, "XDG_DATA_HOME": str(tmp_path / "xdg")},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 2, (args, r.stderr)
            assert message in r.stderr, (args, r.stderr)
            assert "Traceback" not in r.stderr + r.stdout, (args, r.stderr)
    finally:
        taken.close()


def test_up_serves_from_the_per_user_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with CliProcess(["up", "--port", "0", "--log-level", "warning"], env) as up:
        url = up.wait_for(r"hostpulse is up: (http://\S+)").group(1)
        assert httpx.get(f"{url}/api/v1/ready", timeout=10).status_code == 200
    assert (tmp_path / "xdg" / "hostpulse").is_dir()
    assert any((tmp_path / "xdg" / "hostpulse").iterdir())


def _server(data: Path) -> CliProcess:
    return CliProcess(
        ["server", "--port", "0", "--data-dir", str(data), "--log-level", "warning"], ENV
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_sent_to_the_whole_group_answers_and_stops_the_acceptor(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """A service manager stops every process of the unit (systemd's default) and a terminal's
    Ctrl-C reaches the whole group: the ingest acceptor the default settings start on two CPUs
    leaves the stopping to the server, which stops it; nothing is restarted or left behind."""
    args = ["server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--log-level", "info"]
    with CliProcess(args, ENV, group=True) as server:
        server.wait_for(r"1 ingest acceptor process \(ingest_acceptors=auto\) accepts")
        url = server.url()
        acceptors = psutil.Process(server.proc.pid).children()
        assert len(acceptors) == 1 and "acceptor" in " ".join(acceptors[0].cmdline())
        host = SimHost(make_profile(0))
        t = int(time.time() * 1000) - 10_000
        body = codec.encode(
            IngestRequest(batches=[host_batch(host, np.array([t], dtype=np.int64), 5.0)])
        )
        key = agent_key(url, _admin(url)["authorization"].split()[1], host.host_id)
        r = post_ingest(url, key, body)
        assert r.status_code == 200 and r.json()["accepted_samples"] == len(host.series)
        os.killpg(server.proc.pid, sig)
        server.proc.wait(timeout=30)
        rest = server.stop()  # gathers the rest of the output
    assert server.proc.returncode in (0, -sig, 128 + sig), server.output  # 130: Ctrl-C
    assert "exited; starting another" not in rest and "Traceback" not in rest, rest
    assert not psutil.pid_exists(acceptors[0].pid) or acceptors[0].status() == "zombie"


def test_an_acknowledged_batch_survives_a_server_crash(tmp_path: Path) -> None:
    host = SimHost(make_profile(0))
    t = int(time.time() * 1000) - 10_000
    req = host_batch(host, np.array([t - 5000, t], dtype=np.int64), 5.0)
    body = codec.encode(IngestRequest(batches=[req]))
    with _server(tmp_path / "d") as server:
        url = server.url()
        key = agent_key(url, _admin(url)["authorization"].split()[1], host.host_id)
        r = post_ingest(url, key, body)
        assert r.status_code == 200 and r.json()["accepted_samples"] == 2 * len(host.series)
        server.stop(signal.SIGKILL)  # no shutdown, no flush
    with _server(tmp_path / "d") as server:
        url = server.url()
        cur = httpx.get(
            f"{url}/api/v1/hosts/{host.host_id}/current", headers=_admin(url), timeout=10
        ).json()
        assert len(cur["values"]) == len(host.series)
        assert {v["ts_ms"] for v in cur["values"]} == {t}


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(400 if self.path.startswith("/refuse") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_server_log_names_what_failed_but_not_a_webhook_url(tmp_path: Path) -> None:
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    hooks.paths = []  # type: ignore[attr-defined]
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    token = "xoxb" + os.urandom(12).hex()  # the secret part of a Slack webhook URL
    base = f"http://127.0.0.1:{hooks.server_address[1]}"
    (tmp_path / "alerts.yml").write_text(
        f"""
allow_networks: ["127.0.0.0/8"]
channels:
  - id: team-slack
    type: slack
    url: "${{SLACK_WEBHOOK_URL}}"
  - id: refused
    type: webhook
    url: {base}/refuse
rules:
  - id: cpu-hot
    metric: cpu_busy_percent
    warning: 50
"""
    )
    log_and_config = ["--alerts-config", str(tmp_path / "alerts.yml"), "--log-level", "info"]
    server = CliProcess(
        ["server", "--port", "0", "--data-dir", str(tmp_path / "d"), *log_and_config],
        {**ENV, "SLACK_WEBHOOK_URL": f"{base}/services/T0/B0/{token}"},
    )
    try:
        url = server.url()
        key = agent_key(url, _admin(url)["authorization"].split()[1], "web-1")
        test = httpx.post(f"{url}/api/v1/alerts/channels/team-slack/test", headers=_admin(url))
        assert test.status_code == 200 and test.json()["ok"], test.text
        ingest = {
            "batches": [
                {
                    "host": {"hostId": "web-1", "intervalSeconds": 5},
                    "series": [{"metric": "cpu_busy_percent"}],
                    "snapshots": [
                        {"timestampMs": int(time.time() * 1000), "seriesIndex": [0], "values": [99]}
                    ],
                }
            ]
        }
        r = httpx.post(
            f"{url}/api/v1/ingest", json=ingest, headers={"authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 20
        while "/refuse" not in hooks.paths or len(hooks.paths) < 3:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, hooks.paths  # type: ignore[attr-defined]
            time.sleep(0.2)
        time.sleep(0.5)  # the refused send's log line
    finally:
        server.stop()
        out = server.output
        hooks.shutdown()
        hooks.server_close()
    assert f"/services/T0/B0/{token}" in hooks.paths  # type: ignore[attr-defined]
    assert token not in out
    # the log says which channel failed and why (the record's extra fields)
    line = re.search(r"notification not delivered (.*)", out)
    assert line and "channel='refused'" in line[1] and "HTTP 400" in line[1], out
    assert "asctime" not in line[1]
