"""Changing a password (issue 13 item 6): your own needs the current one, so that a stolen
access token cannot take the account over; an admin resets another user's without it."""

from __future__ import annotations

from pathlib import Path

import httpx

from hostpulse.server.testing import LiveServer


def _login(srv: LiveServer, user: str, password: str) -> int:
    r = httpx.post(
        f"{srv.url}/api/v1/auth/login", json={"username": user, "password": password}, timeout=30
    )
    return r.status_code


def test_own_password_needs_the_current_one(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        viewer = srv.headers("viewer")
        old = srv.passwords["viewer"]
        url = f"{srv.url}/api/v1/users/viewer"
        # a stolen access token alone cannot set a new password
        r = httpx.patch(url, json={"password": "taken-over-pw-1"}, headers=viewer, timeout=30)
        assert r.status_code == 422 and "current_password" in r.text
        wrong = {"password": "taken-over-pw-1", "current_password": "not-the-password"}
        r = httpx.patch(url, json=wrong, headers=viewer, timeout=30)
        assert r.status_code == 403 and "current_password" in r.text
        assert _login(srv, "viewer", old) == 200 and _login(srv, "viewer", "taken-over-pw-1") == 401
        right = {"password": "a-new-password-1", "current_password": old}
        assert httpx.patch(url, json=right, headers=viewer, timeout=30).status_code == 200
        assert (
            _login(srv, "viewer", "a-new-password-1") == 200 and _login(srv, "viewer", old) == 401
        )
        # an admin's own password too
        admin = srv.headers("admin")
        r = httpx.patch(
            f"{srv.url}/api/v1/users/admin", json={"password": "x" * 14}, headers=admin, timeout=30
        )
        assert r.status_code == 422


def test_an_admin_resets_another_users_password_without_theirs(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        srv.headers("viewer")
        r = httpx.patch(
            f"{srv.url}/api/v1/users/viewer",
            json={"password": "reset-by-admin-1"},
            headers=srv.headers("admin"),
            timeout=30,
        )
        assert r.status_code == 200
        assert _login(srv, "viewer", "reset-by-admin-1") == 200


def test_guessing_the_current_password_is_throttled(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        viewer = srv.headers("viewer")
        url = f"{srv.url}/api/v1/users/viewer"
        codes = [
            httpx.patch(
                url,
                json={"password": "taken-over-pw-1", "current_password": f"guess-{i}"},
                headers=viewer,
                timeout=30,
            ).status_code
            for i in range(11)
        ]
        assert codes == [403] * 10 + [429]
        right = {"password": "taken-over-pw-1", "current_password": srv.passwords["viewer"]}
        r = httpx.patch(url, json=right, headers=viewer, timeout=30)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
