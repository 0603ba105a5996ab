"""Access tokens (JWT, HS256 fixed here, never taken from the token), opaque random tokens
(refresh tokens, agent keys, enrollment tokens) and the signing secret's file."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
import time
import uuid
from pathlib import Path

import jwt

from hostpulse.server.auth.exceptions import Unauthenticated

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
SECRET_FILE = "jwt-secret"

# prefixes make a leaked value recognisable (and greppable by secret scanners)
AGENT_KEY_PREFIX = "hpk_"
REFRESH_PREFIX = "hpr_"
ENROLL_PREFIX = "hpe_"


def new_token(prefix: str) -> str:
    """A 256-bit random token, URL-safe, with a recognisable prefix."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the database keeps of a random token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_access(secret: bytes, username: str, ttl_s: int) -> str:
    """A signed access token for ``username`` valid ``ttl_s`` seconds (wall clock: PyJWT
    checks ``exp`` and ``iat`` against it)."""
    now = int(time.time())
    claims = {
        "sub": username,
        "typ": ACCESS_TYPE,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


#: Access tokens already verified: (secret, token) -> (username, iat, exp). The signature
#: check of a token cannot change, only the time checks can, and they are made again on every
#: use: the dashboard sends the same token with every request, and PyJWT's decode was a
#: quarter of the CPU of a history answered from memory (cProfile). At most this many; the
#: whole map is dropped when full.
VERIFIED_MAX = 4096
_verified: dict[tuple[bytes, str], tuple[str, float, float]] = {}


def read_access(secret: bytes, token: str) -> str:
    """The username in a valid access token; Unauthenticated when it is malformed, signed
    with another key or algorithm (``alg: none`` included), expired, or not an access token."""
    known = _verified.get((secret, token))
    if known is not None:
        username, iat, exp = known
        if iat <= time.time() < exp:  # PyJWT's own conditions (no leeway)
            return username
    return _decode_access(secret, token)


def _decode_access(secret: bytes, token: str) -> str:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("access token expired") from None
    except jwt.PyJWTError:
        raise Unauthenticated("invalid access token") from None
    if claims.get("typ") != ACCESS_TYPE or not isinstance(claims.get("sub"), str):
        raise Unauthenticated("invalid access token")
    iat, exp = claims["iat"], claims["exp"]
    if isinstance(iat, int | float) and isinstance(exp, int | float):
        if len(_verified) >= VERIFIED_MAX:
            _verified.clear()
        _verified[(secret, token)] = (str(claims["sub"]), float(iat), float(exp))
    return str(claims["sub"])


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret in ``data_dir/jwt-secret`` (created on first start, mode 0600)."""
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("%s was readable by others (mode %o); set to 0600", path, mode)
            path.chmod(0o600)
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 64:
            raise ValueError(
                f"{path}: the signing secret is too short; delete it to renew it"
            ) from None
        return value.encode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    logger.info("created the token signing secret %s", path)
    return load_or_create_secret(data_dir)
