"""Password rules and hashing (argon2id through argon2-cffi with its default parameters)."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hostpulse.server.auth.exceptions import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024
GENERATED_LENGTH = 20
_ALPHABET = string.ascii_letters + string.digits

_hasher = PasswordHasher()
# verified against when the user does not exist, so that a wrong name takes as long as a
# wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password(password: str) -> None:
    """InvalidInput naming the rule when ``password`` may not be used."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password: must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"password: must be at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing user (None) costs the same time."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password for the first admin: 20 letters and digits (~119 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))
