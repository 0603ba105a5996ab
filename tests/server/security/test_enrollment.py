"""Enrolling a host that already has a key (issue 13 item 7): only with a token bound to it, or
after an admin revoked its key; and the agent takes its token from a file or the environment,
so that it is not in the process list."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from leakguard import record_output

from hostpulse.server.testing import LiveServer

HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))


def enroll(srv: LiveServer, token: str, host: str) -> httpx.Response:
    return httpx.post(
        f"{srv.url}/api/v1/agent/enroll", json={"token": token, "host_id": host}, timeout=30
    )


def uses(srv: LiveServer) -> list[int]:
    listed = httpx.get(f"{srv.url}/api/v1/enrollment-tokens", headers=srv.headers(), timeout=30)
    return [t["uses"] for t in listed.json()]


def test_an_enrolled_host_cannot_be_taken_over_with_an_unbound_token(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        real = srv.agent_key("db-1")  # enrolled with a token bound to db-1
        fleet = srv.enrollment_token(single_use=False)
        loose = srv.enrollment_token()  # single use, any host
        for token in (fleet, loose):
            r = enroll(srv, token, "db-1")
            assert r.status_code == 409, r.text
            assert "already enrolled" in r.json()["detail"] and "--host db-1" in r.json()["detail"]
        # the real agent's key still works, and the refused attempts used nothing up
        me = {"authorization": f"Bearer {real}"}
        assert httpx.post(f"{srv.url}/api/v1/agent/rotate", headers=me).status_code == 200
        assert uses(srv)[-2:] == [0, 0]
        assert enroll(srv, loose, "new-host").status_code == 201
        # an admin's token bound to the host replaces its key
        bound = srv.enrollment_token("db-1")
        assert enroll(srv, bound, "db-1").status_code == 201
        # after an admin revoked the host's key, any valid token enrolls it again
        keys = httpx.get(f"{srv.url}/api/v1/agent-keys", headers=srv.headers()).json()
        (live,) = [k for k in keys if k["host_id"] == "db-1" and k["revoked_at"] is None]
        revoke = f"{srv.url}/api/v1/agent-keys/{live['id']}/revoke"
        assert httpx.post(revoke, headers=srv.headers()).status_code == 204
        assert enroll(srv, fleet, "db-1").status_code == 201


def _agent_enrolls(srv: LiveServer, tmp_path: Path, extra: list[str], env: dict[str, str]) -> str:
    """Start the agent with ``extra`` flags and ``env``; wait until its host shows up while
    reading its command line as ``ps`` would; the agent's output."""
    log = tmp_path / "agent.log"
    args = [HOSTPULSE, "agent", "--server", srv.url, "--host-id", "quiet-host", "--interval", "1"]
    args += ["--spool-dir", str(tmp_path / "state" / "spool"), *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        deadline = time.monotonic() + 30
        hosts: list[dict[str, object]] = []
        while not hosts:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
            hosts = httpx.get(f"{srv.url}/api/v1/hosts", headers=srv.headers("viewer")).json()
        assert [h["host_id"] for h in hosts] == ["quiet-host"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    output = log.read_text()
    record_output("agent log", output)
    return cmdline + "\n" + output


def test_the_agent_takes_its_token_from_the_environment(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        token = srv.enrollment_token("quiet-host")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
        env["HOSTPULSE_ENROLL_TOKEN"] = token
        seen = _agent_enrolls(srv, tmp_path, [], env)
        assert token not in seen and "enrolled host quiet-host" in seen
        key_file = tmp_path / "state" / "agent.key"
        assert key_file.read_text().startswith("hpk_")
        # the (now used) token may stay in the environment: a restart uses the saved key
        again = _agent_enrolls(srv, tmp_path, [], env)
        assert "enrollment failed" not in again and "enrolled host" not in again


def test_the_agent_takes_its_token_from_a_file(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        token_file = tmp_path / "enroll.token"
        token_file.write_text(srv.enrollment_token("quiet-host") + "\n")
        token_file.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
        seen = _agent_enrolls(srv, tmp_path, ["--enroll-file", str(token_file)], env)
        assert token_file.read_text().strip() not in seen
        assert "enrolled host quiet-host" in seen
        missing = subprocess.run(
            [HOSTPULSE, "agent", "--server", srv.url, "--enroll-file", str(tmp_path / "none")],
            capture_output=True,
            text=True,
            env={**env, "HOSTPULSE_SHIPPER__KEY_FILE": str(tmp_path / "other.key")},
            timeout=60,
        )
        assert missing.returncode == 2 and "--enroll-file: cannot read" in missing.stderr


def _token(srv: LiveServer, **body: object) -> httpx.Response:
    return httpx.post(
        f"{srv.url}/api/v1/enrollment-tokens",
        json={"single_use": False, **body},
        headers=srv.headers(),
        timeout=30,
    )


def test_a_multi_use_token_enrolls_at_most_its_hosts_and_the_server_at_most_max_hosts(
    tmp_path: Path,
) -> None:
    """Issue 13 item 9: the hosts one enrollment token may enroll, and the hosts enrolled in
    total, are bounded, with a 403 naming the setting."""
    with LiveServer(tmp_path / "d", enrollment_max_hosts=3, max_hosts=5) as srv:
        made = _token(srv, max_hosts=2)
        assert made.status_code == 201 and made.json()["max_hosts"] == 2
        token = made.json()["token"]
        assert enroll(srv, token, "a1").status_code == 201
        assert enroll(srv, token, "a2").status_code == 201
        r = enroll(srv, token, "a3")
        assert r.status_code == 403, r.text
        assert "max_hosts" in r.json()["detail"] and "create another token" in r.json()["detail"]
        assert uses(srv) == [2]
        # more than the server's max_hosts, or more than one for a single-use token: refused
        too_many = _token(srv, max_hosts=6)
        assert too_many.status_code == 422 and "max_hosts" in too_many.text
        assert _token(srv, max_hosts=5).json()["max_hosts"] == 5  # above the default: allowed
        assert _token(srv, single_use=True, max_hosts=2).status_code == 422
        # without max_hosts a multi-use token allows the setting's number
        default = _token(srv).json()
        assert default["max_hosts"] == 3
        listed = httpx.get(f"{srv.url}/api/v1/enrollment-tokens", headers=srv.headers()).json()
        assert [t["max_hosts"] for t in listed] == [2, 5, 3]
        for host in ("b1", "b2", "b3"):
            assert enroll(srv, default["token"], host).status_code == 201
        # five hosts enrolled: a new one is refused whatever the token
        fresh = _token(srv).json()["token"]
        r = enroll(srv, fresh, "c1")
        assert r.status_code == 403 and "max_hosts" in r.json()["detail"]
        assert uses(srv)[-1] == 0  # the refusal used nothing up
        # an enrolled host is still re-enrolled with a token bound to it
        assert enroll(srv, srv.enrollment_token("a1"), "a1").status_code == 201


def test_concurrent_enrollments_cannot_pass_a_tokens_limit(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        token = _token(srv, max_hosts=2).json()["token"]
        with httpx.Client(timeout=30) as client:

            def one(i: int) -> int:
                return client.post(
                    f"{srv.url}/api/v1/agent/enroll", json={"token": token, "host_id": f"h{i}"}
                ).status_code

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                codes = sorted(pool.map(one, range(8)))
        assert codes == [201, 201] + [403] * 6
        assert uses(srv) == [2]
