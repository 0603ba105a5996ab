"""Sign-in: the first admin, password rules, tokens, refresh rotation, throttling."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cli_process import CLI, CliProcess, run_cli
from leakguard import record_output, record_secret

from hostpulse.server.testing import LiveServer

FIXED = ("admin", "password", "admin123456789", "changeme", "hostpulse", "administrator1")


def login(url: str, user: str, password: str, client: httpx.Client | None = None) -> httpx.Response:
    send = client.post if client is not None else httpx.post
    return send(f"{url}/api/v1/auth/login", json={"username": user, "password": password})


def test_first_start_without_a_terminal_writes_the_password_to_a_0600_file(
    tmp_path: Path,
) -> None:
    """Under a service manager stderr goes to a log or the journal: the password must not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    data = tmp_path / "d"

    def start() -> CliProcess:
        return CliProcess(
            ["server", "--port", "0", "--data-dir", str(data), "--log-level", "info"], env
        )

    file = data / "initial-admin-password"
    with start() as server:
        url = server.url()
        out = server.output
        password = file.read_text().strip()
        record_secret(password)
        record_output("first start output", out)
        assert file.stat().st_mode & 0o777 == 0o600
        assert password not in out and "shown only once" not in out
        assert str(file) in out  # the log says where it is
        assert len(password) >= 16
        assert login(url, "admin", password).status_code == 200
        for fixed in FIXED:
            assert login(url, "admin", fixed).status_code == 401, fixed
        assert (data / "jwt-secret").stat().st_mode & 0o777 == 0o600
        # the database (channel secrets in it) is out of other local users' reach
        assert data.stat().st_mode & 0o777 == 0o700
    file.unlink()  # as the operator is told to, after signing in
    with start() as server:  # the second start writes and prints no password
        url = server.url()
        assert not file.exists() and str(file) not in server.output
        assert login(url, "admin", password).status_code == 200


def test_first_start_on_a_terminal_prints_the_password_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    data = tmp_path / "d"
    leader, follower = pty.openpty()
    args = [*CLI, "server", "--port", "0", "--data-dir", str(data)]
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    out = b""
    try:
        deadline = time.monotonic() + 60
        while b"(API docs:" not in out:
            assert time.monotonic() < deadline and proc.poll() is None, out.decode()
            if select.select([leader], [], [], 0.5)[0]:
                out += os.read(leader, 65536)
        text = out.decode()
        m = re.search(r"password \(shown only once\):\s+(\S+)", text)
        assert m, text
        password = m.group(1)
        record_secret(password)
        record_output("first start on a terminal (password redacted)", text.replace(password, "*"))
        url = re.search(r"server listening on (\S+)", text)
        assert url
        assert login(url.group(1), "admin", password).status_code == 200
        assert not (data / "initial-admin-password").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        os.close(leader)


def test_admin_password_from_the_environment_must_be_long_enough(tmp_path: Path) -> None:
    env = {**os.environ, "HOSTPULSE_ADMIN_PASSWORD": "short-pw"}
    r = run_cli(["server", "--data-dir", str(tmp_path)], env)
    assert r.returncode == 2
    assert "HOSTPULSE_ADMIN_PASSWORD" in r.stderr and "12 characters" in r.stderr


def test_passwords_under_12_characters_are_refused(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        h = srv.headers("admin")
        r = httpx.post(
            f"{srv.url}/api/v1/users",
            json={"username": "bob", "password": "elevenchars", "role": "viewer"},
            headers=h,
        )
        assert r.status_code == 422 and "12" in r.text
        r = httpx.patch(f"{srv.url}/api/v1/users/admin", json={"password": "short"}, headers=h)
        assert r.status_code == 422
        ok = {"username": "bob", "password": "twelve-chars", "role": "viewer"}
        assert httpx.post(f"{srv.url}/api/v1/users", json=ok, headers=h).status_code == 201
        assert httpx.post(f"{srv.url}/api/v1/users", json=ok, headers=h).status_code == 409
        assert login(srv.url, "bob", "twelve-chars").status_code == 200


def test_refresh_rotates_and_logout_revokes(tmp_path: Path, server_db: dict[str, str]) -> None:
    with LiveServer(tmp_path / "d", **server_db) as srv:
        assert srv.admin_password
        first = srv.login("admin", srv.admin_password)
        assert first["token_type"] == "bearer" and first["user"] == {
            "username": "admin",
            "role": "admin",
        }
        assert 0 < first["expires_in"] <= 900
        url = f"{srv.url}/api/v1/auth"
        second = httpx.post(f"{url}/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        new = second.json()
        assert new["refresh_token"] != first["refresh_token"]
        me = httpx.get(f"{url}/me", headers={"authorization": f"Bearer {new['access_token']}"})
        assert me.json() == {"username": "admin", "role": "admin"}
        # the old one is revoked; reusing it also ends the session it was rotated into
        reuse = httpx.post(f"{url}/refresh", json={"refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401
        again = httpx.post(f"{url}/refresh", json={"refresh_token": new["refresh_token"]})
        assert again.status_code == 401
        third = srv.login("admin", srv.admin_password)
        assert (
            httpx.post(f"{url}/logout", json={"refresh_token": third["refresh_token"]}).status_code
            == 204
        )
        gone = httpx.post(f"{url}/refresh", json={"refresh_token": third["refresh_token"]})
        assert gone.status_code == 401


def test_object_checks_on_users(tmp_path: Path, server_db: dict[str, str]) -> None:
    with LiveServer(tmp_path / "d", **server_db) as srv:
        viewer, editor = srv.headers("viewer"), srv.headers("editor")
        users = f"{srv.url}/api/v1/users"
        # a viewer changes their own password, not another user's, nor their own role
        change = {"password": "viewer-new-pass", "current_password": srv.passwords["viewer"]}
        own = httpx.patch(f"{users}/viewer", json=change, headers=viewer)
        assert own.status_code == 200 and own.json()["role"] == "viewer"
        assert "password" not in own.text and "hash" not in own.text
        other = httpx.patch(f"{users}/editor", json={"password": "x" * 12}, headers=viewer)
        assert other.status_code == 403
        promote = httpx.patch(f"{users}/viewer", json={"role": "admin"}, headers=viewer)
        assert promote.status_code == 403
        assert login(srv.url, "viewer", "viewer-new-pass").status_code == 200
        # an editor manages no users
        new = {"username": "eve", "password": "e" * 12, "role": "admin"}
        assert httpx.post(users, json=new, headers=editor).status_code == 403
        assert httpx.delete(f"{users}/viewer", headers=editor).status_code == 403
        assert httpx.get(users, headers=editor).status_code == 403
        # the last admin cannot be removed or demoted
        admin = srv.headers("admin")
        assert httpx.delete(f"{users}/admin", headers=admin).status_code == 409
        demote = httpx.patch(f"{users}/admin", json={"role": "viewer"}, headers=admin)
        assert demote.status_code == 409
        # a deleted user's access token stops working at once
        assert httpx.delete(f"{users}/editor", headers=admin).status_code == 204
        assert httpx.get(f"{srv.url}/api/v1/hosts", headers=editor).status_code == 401


def _client(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_eleventh_failed_login_for_an_account_gets_429(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        assert srv.admin_password
        for i in range(10):  # each from its own address: only the account's count grows
            with _client(f"127.0.0.{10 + i}") as c:
                assert login(srv.url, "admin", f"wrong-{i}", c).status_code == 401
        with _client("127.0.0.30") as c:
            r = login(srv.url, "admin", srv.admin_password, c)  # even the right password
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        with _client("127.0.0.31") as c:  # another account from a fresh address is fine
            assert login(srv.url, "viewer-x", "nope-nope-nope", c).status_code == 401


def test_eleventh_failed_login_from_an_address_gets_429(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        assert srv.admin_password
        with _client("127.0.0.40") as c:
            for i in range(10):  # ten accounts, one address
                assert login(srv.url, f"user{i}", "wrong-password", c).status_code == 401
            r = login(srv.url, "admin", srv.admin_password, c)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        with _client("127.0.0.41") as c:
            assert login(srv.url, "admin", srv.admin_password, c).status_code == 200


def test_a_throttled_account_gets_in_again_after_the_window(tmp_path: Path) -> None:
    from hostpulse.server.auth.exceptions import Throttled
    from hostpulse.server.auth.throttle import FailureThrottle

    now = [0.0]
    t = FailureThrottle(10, 60.0, lambda: now[0])
    for _ in range(10):
        t.check("user:a", "a")
        t.failed("user:a")
        now[0] += 1
    with pytest.raises(Throttled) as exc:
        t.check("user:a", "a")
    assert exc.value.retry_after == 50  # the first failure was at 0 s, now is 10 s
    now[0] = 60.0
    t.check("user:a", "a")  # the oldest failure is a minute old


def test_server_settings_default_limits() -> None:
    from hostpulse.server.config import ServerSettings

    s = ServerSettings()
    assert (s.agent_rate_limit, s.rate_limit_window, s.access_token_ttl) == (100, 60.0, 900.0)
