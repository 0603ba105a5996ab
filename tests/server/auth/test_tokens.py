"""Access tokens accept only HS256 with our secret and every claim; secrets stay out of logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jwt
import pytest

from hostpulse.server.auth import redact, tokens
from hostpulse.server.auth.exceptions import Unauthenticated

SECRET = b"s" * 64


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "alice", "typ": "access", "iat": now, "exp": now + 60, **over}


def test_a_valid_token_names_its_user() -> None:
    assert tokens.read_access(SECRET, tokens.issue_access(SECRET, "alice", 60)) == "alice"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(), SECRET, algorithm="HS512"),  # another algorithm, same secret
        jwt.encode(claims(), b"x" * 64, algorithm="HS256"),  # another secret
        jwt.encode(claims(exp=int(time.time()) - 1), SECRET, algorithm="HS256"),
        jwt.encode(claims(iat=int(time.time()) + 3600), SECRET, algorithm="HS256"),
        jwt.encode(claims(typ="refresh"), SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, algorithm="HS256"),
        jwt.encode(claims(), None, algorithm="none"),
        "not-a-jwt",
    ],
)
def test_anything_else_is_refused(token: str) -> None:
    with pytest.raises(Unauthenticated):
        tokens.read_access(SECRET, token)


def test_random_tokens_are_256_bit_and_stored_as_sha256() -> None:
    key = tokens.new_token(tokens.AGENT_KEY_PREFIX)
    assert key.startswith("hpk_") and len(key) == 4 + 43
    assert len(tokens.digest(key)) == 64 and tokens.digest(key) != tokens.digest(key + "x")


def test_the_secret_file_is_created_0600_and_kept(tmp_path: Path) -> None:
    first = tokens.load_or_create_secret(tmp_path)
    path = tmp_path / tokens.SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600 and len(first) == 64
    path.chmod(0o644)
    assert tokens.load_or_create_secret(tmp_path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_uvicorn_lines_lose_their_tokens(caplog: pytest.LogCaptureFixture) -> None:
    redact.install()
    logger = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/api/v1/ws?token=abc.def&x=1")
        logger.info("Authorization: Bearer hpk_secretvalue")
    text = caplog.text
    assert "abc.def" not in text and "hpk_secretvalue" not in text
    assert "/api/v1/ws?token=[redacted]&x=1" in text


def test_a_token_read_before_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = tokens.issue_access(SECRET, "alice", 60)
    assert tokens.read_access(SECRET, token) == "alice"
    assert tokens.read_access(SECRET, token) == "alice"  # the second read: from memory
    with pytest.raises(Unauthenticated):  # never for another secret
        tokens.read_access(b"x" * 64, token)
    later = time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _Frozen(later), raising=False)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.read_access(SECRET, token)


def test_verified_tokens_are_bounded() -> None:
    for i in range(tokens.VERIFIED_MAX + 10):
        tokens.read_access(SECRET, tokens.issue_access(SECRET, f"u{i}", 60))
    assert 0 < len(tokens._verified) <= tokens.VERIFIED_MAX


class _Frozen:
    """``datetime`` for PyJWT whose ``now`` is ``at``."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self, tz: object = None) -> object:
        import datetime as dt

        return dt.datetime.fromtimestamp(self.at, tz=dt.UTC)
