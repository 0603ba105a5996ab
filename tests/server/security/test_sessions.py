"""Sign-in: the first admin, password rules, tokens, refresh rotation, throttling."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from cli_process import CliProcess, run_cli
from leakguard import record_output, record_secret

from hostpulse.server.testing import LiveServer

FIXED = ("admin", "password", "admin123456789", "changeme", "hostpulse", "administrator1")


def login(url: str, user: str, password: str, client: httpx.Client | None = None) -> httpx.Response:
    send = client.post if client is not None else httpx.post
    return send(f"{url}/api/v1/auth/login", json={"username": user, "password": password})


def test_first_start_prints_a_generated_password_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    data = tmp_path / "d"

    def start() -> CliProcess:
        return CliProcess(
            ["server", "--port", "0", "--data-dir", str(data), "--log-level", "info"], env
        )

    with start() as server:
        url = server.url()
        out = server.output
        m = re.search(r"password \(shown only once\):\s+(\S+)", out)
        assert m, out
        password = m.group(1)
        record_secret(password)
        record_output("first start output (password redacted)", out.replace(password, "*"))
        assert len(password) >= 16
        assert login(url, "admin", password).status_code == 200
        for fixed in FIXED:
            assert login(url, "admin", fixed).status_code == 401, fixed
        assert "admin" in out and (data / "jwt-secret").stat().st_mode & 0o777 == 0o600
        # the database (channel secrets in it) is out of other local users' reach
        assert data.stat().st_mode & 0o777 == 0o700
    with start() as server:  # the second start prints no password
        url = server.url()
        again = server.output
        assert "shown only once" not in again and password not in again
        assert login(url, "admin", password).status_code == 200


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
        own = httpx.patch(f"{users}/viewer", json={"password": "viewer-new-pass"}, headers=viewer)
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
