"""`hostpulse user|token|key` on a server's data directory, and a running server that sees the
changes (new users at once; removed users and revoked keys within the caches' 10 s)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from leakguard import record_secret
from typer.testing import CliRunner

from hostpulse.cli.main import app
from hostpulse.server.testing import LiveServer

runner = CliRunner()


def cli(
    data: Path | tuple[Path, str | None], *args: str, stdin: str | None = None
) -> tuple[int, str]:
    """``hostpulse ARGS --data-dir DATA`` (``(DATA, URL)``: and ``--database-url URL``)."""
    data, url = data if isinstance(data, tuple) else (data, None)
    db = ["--database-url", url] if url else []
    result = runner.invoke(app, [*args, "--data-dir", str(data), *db], input=stdin)
    return result.exit_code, result.output


def test_user_commands(tmp_path: Path, server_db: dict[str, str]) -> None:
    data = tmp_path / "d"
    where = (data, server_db.get("database_url"))  # the commands find the same database
    code, out = cli(where, "user", "add", "alice", "--role", "editor", stdin="short\nshort\n")
    assert code == 2 and "at least 12 characters" in out
    assert data.stat().st_mode & 0o777 == 0o700  # created for the server's user only
    pw = "alice-password-1"
    record_secret(pw)
    code, out = cli(where, "user", "add", "alice", "--role", "editor", stdin=f"{pw}\n{pw}\n")
    assert code == 0 and "added user alice (editor)" in out
    code, out = cli(where, "user", "add", "alice", stdin=f"{pw}\n{pw}\n")
    assert code == 1 and "exists" in out
    code, out = cli(where, "user", "add", "bob", "--role", "boss", stdin=f"{pw}\n{pw}\n")
    assert code == 2 and "viewer, editor, admin" in out
    code, out = cli(where, "user", "list")
    assert code == 0 and re.search(r"alice\s+editor", out) and pw not in out
    with LiveServer(data, **server_db) as srv:  # no admin yet: the first start adds one
        assert srv.login("alice", pw)["user"] == {"username": "alice", "role": "editor"}
        new = "alice-password-2"
        record_secret(new)
        code, out = cli(where, "user", "passwd", "alice", stdin=f"{new}\n{new}\n")
        assert code == 0
        bad = httpx.post(f"{srv.url}/api/v1/auth/login", json={"username": "alice", "password": pw})
        assert bad.status_code == 401
        assert srv.login("alice", new)["access_token"]
        assert cli(where, "user", "role", "alice", "admin") == (0, "alice is now admin\n")
        assert srv.login("alice", new)["user"]["role"] == "admin"
        assert cli(where, "user", "role", "alice", "boss")[0] == 2
        assert cli(where, "user", "role", "alice", "viewer")[0] == 0
        assert cli(where, "user", "role", "admin", "viewer") == (
            1,
            "error: 'admin' is the last admin; make another user admin first\n",
        )
        assert cli(where, "user", "remove", "alice")[0] == 0
        assert cli(where, "user", "remove", "admin") == (
            1,
            "error: 'admin' is the last admin; make another user admin first\n",
        )
        gone = httpx.post(
            f"{srv.url}/api/v1/auth/login", json={"username": "alice", "password": new}
        )
        assert gone.status_code == 401


def test_token_and_key_commands(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with LiveServer(data) as srv:
        code, out = cli(
            data, "token", "create", "--host", "web-1", "--ttl", "1h", "--server-url", srv.url
        )
        assert code == 0, out
        token = re.search(r"--enroll (\S+)", out)
        assert token and f"hostpulse agent --server {srv.url} --host-id web-1 --enroll" in out
        install = f"curl -fsSL {srv.url}/install/agent.sh | sudo sh -s -- --token {token.group(1)}"
        assert f"{install} --host web-1" in out
        record_secret(token.group(1))
        key = srv.enroll("web-1", token.group(1))
        code, out = cli(data, "token", "list")
        assert code == 0 and "web-1" in out and token.group(1) not in out
        code, out = cli(data, "key", "list")
        assert code == 0 and key[:12] in out and key not in out
        key_id = re.search(r"^\s*(\d+)\s+web-1", out, re.M)
        assert key_id
        code, out = cli(data, "key", "rotate", key_id.group(1))
        assert code == 0
        new = re.search(r"(hpk_\S+)", out)
        assert new
        record_secret(new.group(1))
        body = b""
        headers = {"content-type": "application/json", "authorization": f"Bearer {new.group(1)}"}
        r = httpx.post(f"{srv.url}/api/v1/ingest", content=b"{}", headers=headers)
        assert r.status_code == 200, r.text
        del body
        assert cli(data, "key", "revoke", "999")[0] == 1
        code, out = cli(data, "token", "create", "--ttl", "soon")
        assert code == 2 and "--ttl" in out


def test_a_key_revoked_by_the_command_is_refused_by_the_running_server(tmp_path: Path) -> None:
    import time

    data = tmp_path / "d"
    with LiveServer(data) as srv:
        key = srv.agent_key("web-1")
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        url = f"{srv.url}/api/v1/ingest"
        assert httpx.post(url, content=b"{}", headers=headers).status_code == 200  # cached
        code, out = cli(data, "key", "list")
        key_id = re.search(r"^\s*(\d+)\s+web-1", out, re.M)
        assert code == 0 and key_id
        assert cli(data, "key", "revoke", key_id.group(1))[0] == 0
        revoked_at = time.monotonic()
        while httpx.post(url, content=b"{}", headers=headers).status_code == 200:
            assert time.monotonic() - revoked_at < 12, "still accepted after the key cache's 10 s"
            time.sleep(0.5)
        assert httpx.post(url, content=b"{}", headers=headers).status_code == 401


def test_a_user_removed_by_the_command_loses_access_to_the_running_server(
    tmp_path: Path,
) -> None:
    import time

    data = tmp_path / "d"
    with LiveServer(data) as srv:
        headers = srv.headers("editor")
        me = f"{srv.url}/api/v1/auth/me"
        assert httpx.get(me, headers=headers).status_code == 200  # the role is cached now
        assert cli(data, "user", "remove", "editor")[0] == 0
        removed_at = time.monotonic()
        while httpx.get(me, headers=headers).status_code == 200:
            assert time.monotonic() - removed_at < 12, "still signed in after the role cache's 10 s"
            time.sleep(0.5)
        assert httpx.get(me, headers=headers).status_code == 401
        rule = {"id": "late", "metric": "cpu_busy_percent", "warning": 99}
        r = httpx.post(f"{srv.url}/api/v1/alerts/rules", json=rule, headers=headers)
        assert r.status_code == 401
