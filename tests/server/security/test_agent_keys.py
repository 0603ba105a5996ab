"""Agent keys: enrollment (expiry, single use, host binding), the agent's --enroll, revocation
on the next request, rotation, per-key rate limits, and secrets at rest and in responses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from leakguard import record_output, record_secret
from wire import batch, now_ms, request

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.delivery.spool import Spool
from hostpulse.server.testing import Clock, LiveServer

HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))
PB = {"content-type": "application/x-protobuf"}


def push(srv: LiveServer, host: str, key: str, ts: int | None = None) -> httpx.Response:
    body = request(batch(host, [(ts or now_ms() - 1000, {("cpu_busy_percent", ()): 1.0})]))
    headers = {**PB, "authorization": f"Bearer {key}"}
    return httpx.post(f"{srv.url}/api/v1/ingest", content=body.SerializeToString(), headers=headers)


def enroll(srv: LiveServer, token: str, host: str) -> httpx.Response:
    return httpx.post(
        f"{srv.url}/api/v1/agent/enroll", json={"token": token, "host_id": host}, timeout=30
    )


def test_enrollment_tokens_expire_are_single_use_and_host_bound(
    tmp_path: Path, server_db: dict[str, str]
) -> None:
    clock = Clock()
    with LiveServer(tmp_path / "d", clock, **server_db) as srv:
        once = srv.enrollment_token("web-1")
        assert enroll(srv, once, "web-2").status_code == 403  # bound to web-1
        first = enroll(srv, once, "web-1")
        assert first.status_code == 201 and first.json()["host_id"] == "web-1"
        assert first.json()["key"].startswith("hpk_")
        assert enroll(srv, once, "web-1").status_code == 401  # used up
        fleet = srv.enrollment_token(single_use=False, ttl_seconds=60)
        keys = [enroll(srv, fleet, f"sim-{i}").json()["key"] for i in range(3)]
        assert len(set(keys)) == 3
        for i, key in enumerate(keys):  # each key pushes for its own host only
            assert push(srv, f"sim-{i}", key).status_code == 200
            assert push(srv, f"sim-{(i + 1) % 3}", key).status_code == 403
        listed = httpx.get(f"{srv.url}/api/v1/enrollment-tokens", headers=srv.headers()).json()
        assert [t["uses"] for t in listed] == [1, 3]
        assert all("token" not in t for t in listed)
        clock.advance(61)  # the server's clock: the multi-use token has expired
        late = enroll(srv, fleet, "sim-9")
        assert late.status_code == 401 and "expired" in late.json()["detail"]
        assert enroll(srv, "hpe_" + "x" * 43, "sim-9").status_code == 401
        created = httpx.post(
            f"{srv.url}/api/v1/enrollment-tokens", json={"host_id": "db-1"}, headers=srv.headers()
        ).json()
        assert created["command"] == (
            f"hostpulse agent --server {srv.url} --host-id db-1 --enroll {created['token']}"
        )
        assert created["install_command"] == (
            f"curl -fsSL {srv.url}/install/agent.sh | sudo sh -s -- "
            f"--token {created['token']} --host db-1"
        )
        gone = httpx.delete(
            f"{srv.url}/api/v1/enrollment-tokens/{created['id']}", headers=srv.headers()
        )
        assert gone.status_code == 204
        assert enroll(srv, created["token"], "db-1").status_code == 401


def test_revoke_takes_effect_on_the_next_request_and_rotate_replaces_the_key(
    tmp_path: Path, server_db: dict[str, str]
) -> None:
    with LiveServer(tmp_path / "d", **server_db) as srv:
        key = srv.agent_key("web-1")
        assert push(srv, "web-1", key).status_code == 200  # cached as valid now
        (row,) = httpx.get(f"{srv.url}/api/v1/agent-keys", headers=srv.headers()).json()
        assert row["prefix"] == key[:12] and row["last_used_at"] is not None
        assert set(row) == {"id", "host_id", "prefix", "created_at", "last_used_at", "revoked_at"}
        r = httpx.post(f"{srv.url}/api/v1/agent-keys/{row['id']}/rotate", headers=srv.headers())
        assert r.status_code == 200
        new = r.json()["key"]
        assert r.json()["host_id"] == "web-1" and new != key
        assert push(srv, "web-1", key).status_code == 401  # the old one, at once
        assert push(srv, "web-1", new).status_code == 200
        new_id = r.json()["id"]
        revoke = httpx.post(f"{srv.url}/api/v1/agent-keys/{new_id}/revoke", headers=srv.headers())
        assert revoke.status_code == 204
        refused = push(srv, "web-1", new)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        # the agent may rotate its own key
        own = srv.agent_key("web-2")
        r = httpx.post(f"{srv.url}/api/v1/agent/rotate", headers={"authorization": f"Bearer {own}"})
        assert r.status_code == 200 and r.json()["host_id"] == "web-2"
        assert push(srv, "web-2", own).status_code == 401
        assert push(srv, "web-2", r.json()["key"]).status_code == 200


def test_the_101st_request_of_a_key_within_a_minute_gets_429(tmp_path: Path) -> None:
    # the default limit: 100 requests per key per minute
    with LiveServer(tmp_path / "d", agent_rate_limit=100) as srv:
        key = srv.agent_key("web-1")
        other = srv.agent_key("web-2")
        t = now_ms() - 200_000
        for i in range(100):
            assert push(srv, "web-1", key, t + i).status_code == 200, i
        r = push(srv, "web-1", key, t + 100)
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert push(srv, "web-2", other).status_code == 200  # per key, not global


def test_user_rate_limit(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d", user_rate_limit=5) as srv:
        h = srv.headers("viewer")
        codes = [httpx.get(f"{srv.url}/api/v1/hosts", headers=h).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]


def test_the_backlog_drains_through_the_rate_limit(tmp_path: Path) -> None:
    """A backlog bigger than the limit allows at once is delivered: the shipper waits for the
    server's Retry-After and sends the rest, nothing lost or rejected."""
    with LiveServer(tmp_path / "d", agent_rate_limit=3, rate_limit_window=2) as srv:
        spool = Spool(SpoolSettings(dir=str(tmp_path / "spool")))
        settings = ShipperSettings(
            server=srv.url,
            api_key=srv.agent_key("web-1"),
            max_batch_snapshots=2,
            live_snapshots=0,
            drain_pause=0,
        )
        shipper = Shipper(settings, spool)
        t = now_ms() - 100_000
        for i in range(16):
            shipper.put(batch("web-1", [(t + i * 1000, {("cpu_busy_percent", ()): float(i)})]))
        shipper.start()
        deadline = time.monotonic() + 60
        while shipper.stats().sent < 16 and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = shipper.stats()
        shipper.close(2)
        assert stats.sent == 16 and stats.rejected == 0
        assert stats.retried >= 1  # it did meet the limit
        assert srv.call(srv.store.stats()).raw_samples == 16


def test_agent_enrolls_saves_a_0600_key_and_ships_with_it(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        token = srv.enrollment_token("agent-host")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
        log = tmp_path / "agent.log"
        args = [HOSTPULSE, "agent", "--server", srv.url, "--host-id", "agent-host"]
        args += ["--interval", "1", "--spool-dir", str(tmp_path / "state" / "spool")]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*args, "--enroll", token], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            key_file = tmp_path / "state" / "agent.key"
            deadline = time.monotonic() + 30
            hosts: list[dict[str, object]] = []
            while not hosts and time.monotonic() < deadline:
                time.sleep(0.3)
                hosts = httpx.get(f"{srv.url}/api/v1/hosts", headers=srv.headers("viewer")).json()
            assert [h["host_id"] for h in hosts] == ["agent-host"], log.read_text()
            key = key_file.read_text().strip()
            record_secret(key)
            assert key.startswith("hpk_") and key_file.stat().st_mode & 0o777 == 0o600
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        output = log.read_text()
        record_output("agent log", output)
        assert "enrolled host agent-host" in output and token not in output
        # the next start uses the saved key without a token
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            before = srv.call(srv.store.stats()).raw_samples
            deadline = time.monotonic() + 30
            while srv.call(srv.store.stats()).raw_samples == before:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        record_output("agent log", log.read_text())
        # a used token is refused with a reason and exit status 2
        r = subprocess.run(
            [*args, "--enroll", token], capture_output=True, text=True, env=env, timeout=60
        )
        assert r.returncode == 2 and "HTTP 401" in r.stderr and token not in r.stderr


def test_keys_and_tokens_are_not_in_the_database_or_in_later_responses(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        assert srv.admin_password
        issued = [srv.admin_password, srv.token("admin"), srv.token("viewer")]
        issued += [srv.passwords["viewer"], srv.agent_key("web-1")]
        issued += [srv.enrollment_token("web-2"), srv.enrollment_token(single_use=False)]
        issued.append(srv.login("admin", srv.admin_password)["refresh_token"])
        assert push(srv, "web-1", srv.agent_key("web-1")).status_code == 200
        answers = [
            httpx.get(f"{srv.url}{path}", headers=srv.headers()).text
            for path in (
                "/api/v1/users",
                "/api/v1/agent-keys",
                "/api/v1/enrollment-tokens",
                "/api/v1/auth/me",
                "/api/v1/hosts",
            )
        ]
        for text in answers:
            assert not any(s in text for s in issued)
            assert "$argon2" not in text and not re.search(r"[0-9a-f]{64}", text)
        srv.call(srv.store.maintain(now_ms()))
    files = [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    blob = b"".join(p.read_bytes() for p in files)
    assert b"$argon2id$" in blob  # the hashes are there (so the search reads the tables)
    for secret in issued:
        assert secret.encode() not in blob


def test_ids_out_of_range_are_a_422_not_a_server_error(tmp_path: Path) -> None:
    """Found by the schema fuzzing: an id past 64 bits reached the database (500)."""
    with LiveServer(tmp_path / "data") as srv:
        admin = srv.headers("admin")
        huge = 2**70
        for method, path in (
            ("POST", f"/api/v1/agent-keys/{huge}/revoke"),
            ("POST", f"/api/v1/agent-keys/{huge}/rotate"),
            ("DELETE", f"/api/v1/enrollment-tokens/{huge}"),
            ("POST", "/api/v1/agent-keys/0/revoke"),
        ):
            r = httpx.request(method, srv.url + path, headers=admin)
            assert r.status_code == 422, (path, r.text)
        r = httpx.post(srv.url + f"/api/v1/agent-keys/{2**63 - 1}/revoke", headers=admin)
        assert r.status_code == 404, r.text
