"""Smaller hardening items of issue 13 (item 12): forwarded headers only from configured
proxies, no framing of HTML pages, no caching of answers that carry tokens or keys, and a
refused local channel target naming the setting that allows it."""

from __future__ import annotations

from pathlib import Path

import httpx
from cli_process import run_cli

from hostpulse.server.testing import LiveServer


def _client(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def _fail_logins(srv: LiveServer, client: httpx.Client, count: int) -> list[int]:
    """``count`` wrong logins for distinct accounts, each claiming its own forwarded address."""
    return [
        client.post(
            f"{srv.url}/api/v1/auth/login",
            json={"username": f"nobody{i}", "password": "wrong-password"},
            headers={"x-forwarded-for": f"203.0.113.{i + 1}"},
        ).status_code
        for i in range(count)
    ]


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv, _client("127.0.0.1") as c:
        # a local process (uvicorn's default trusts 127.0.0.1) cannot pick a fresh address
        # for each attempt
        assert _fail_logins(srv, c, 11) == [401] * 10 + [429]


def test_a_trusted_proxy_gives_the_client_address(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d", trusted_proxies=["127.0.3.2"]) as srv:
        with _client("127.0.3.2") as proxy:
            assert _fail_logins(srv, proxy, 11) == [401] * 11  # eleven different clients
        with _client("127.0.3.3") as other:  # not a proxy: its header is not believed
            assert _fail_logins(srv, other, 11) == [401] * 10 + [429]


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from hostpulse.server.config import ServerSettings

    assert ServerSettings(trusted_proxies="127.0.0.1, 10.0.0.9/24").trusted_proxies == [
        "127.0.0.1",
        "10.0.0.0/24",
    ]
    try:
        ServerSettings(trusted_proxies="proxy.example.com")
    except ValidationError as exc:
        assert "trusted_proxies" in str(exc) and "not an IP address" in str(exc)
    else:
        raise AssertionError("a host name was accepted as a trusted proxy")


def test_the_server_command_names_a_bad_trusted_proxy(tmp_path: Path) -> None:
    r = run_cli(["server", "--data-dir", str(tmp_path), "--trusted-proxies", "127.0.0.1,nope"])
    assert r.returncode == 2
    assert "HOSTPULSE_TRUSTED_PROXIES" in r.stderr and "'nope'" in r.stderr


def test_html_pages_cannot_be_framed(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        for page in ("/docs", "/redoc"):
            r = httpx.get(srv.url + page, timeout=30)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert r.headers["x-frame-options"] == "DENY", page
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], page
        # the dashboard keeps its own, stricter policy
        r = httpx.get(srv.url + "/", timeout=30)
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers.get_list("content-security-policy") == [
            r.headers["content-security-policy"]
        ]


def test_answers_with_tokens_or_keys_are_not_stored(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        assert srv.admin_password
        admin = srv.headers("admin")
        api = f"{srv.url}/api/v1"
        login = httpx.post(
            f"{api}/auth/login", json={"username": "admin", "password": srv.admin_password}
        )
        refresh = httpx.post(
            f"{api}/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
        )
        created = httpx.post(f"{api}/enrollment-tokens", json={"host_id": "h1"}, headers=admin)
        enrolled = httpx.post(
            f"{api}/agent/enroll", json={"token": created.json()["token"], "host_id": "h1"}
        )
        own = httpx.post(
            f"{api}/agent/rotate",
            headers={"authorization": f"Bearer {enrolled.json()['key']}"},
        )
        (key,) = [
            k for k in httpx.get(f"{api}/agent-keys", headers=admin).json() if not k["revoked_at"]
        ]
        rotated = httpx.post(f"{api}/agent-keys/{key['id']}/rotate", headers=admin)
        for r in (login, refresh, created, enrolled, own, rotated):
            assert r.status_code in (200, 201), (r.url, r.text)
            assert r.headers["cache-control"] == "no-store", r.url
        me = httpx.get(f"{api}/auth/me", headers=admin)
        assert "no-store" not in me.headers.get("cache-control", "")


def test_a_local_channel_target_is_refused_naming_allow_networks(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "d") as srv:
        r = httpx.post(
            f"{srv.url}/api/v1/alerts/channels",
            json={"id": "hook", "type": "webhook", "url": "http://[64:ff9b::a9fe:a9fe]/x"},
            headers=srv.headers("editor"),
            timeout=30,
        )
        assert r.status_code == 422 and "allow_networks" in r.text, r.text
