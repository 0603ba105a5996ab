"""``signing_secret_file``: replicas given the same file accept each other's access tokens; a
missing or short file stops the server at start with the key named."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from hostpulse.server.config import ServerSettings
from hostpulse.server.testing import LiveServer, login


def test_servers_with_one_secret_file_accept_each_others_tokens(
    tmp_path: Path, database_url: str
) -> None:
    secret = tmp_path / "signing-secret"
    secret.write_text(secrets.token_hex(32) + "\n")
    secret.chmod(0o400)  # the operator's file, read-only: used as it is
    password = "admin-" + secrets.token_hex(8)
    common = {"admin_password": password, "signing_secret_file": secret}
    if database_url.startswith("postgresql"):
        common["database_url"] = database_url
    with (
        LiveServer(tmp_path / "a", **common) as a,
        LiveServer(tmp_path / "b", **common) as b,
        LiveServer(tmp_path / "c", admin_password=password) as alone,
    ):
        token = login(a.url, "admin", password)["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{b.url}/api/v1/hosts", headers=headers, timeout=30).status_code == 200
        # a server with its own jwt-secret does not take it
        assert (
            httpx.get(f"{alone.url}/api/v1/hosts", headers=headers, timeout=30).status_code == 401
        )
    assert not (tmp_path / "a" / "jwt-secret").exists()
    assert secret.stat().st_mode & 0o777 == 0o400


@pytest.mark.parametrize("content", [None, "too-short"])
def test_a_missing_or_short_secret_file_is_a_settings_error(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValidationError) as err:
        ServerSettings(data_dir=tmp_path / "data", signing_secret_file=path)
    text = str(err.value)
    assert "signing_secret_file" in text and str(path) in text
