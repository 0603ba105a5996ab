"""The auth service's knobs (filled from ``ServerSettings`` by ``hostpulse.server.auth.run``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuthConfig:
    access_ttl_s: int = 15 * 60
    refresh_ttl_s: int = 30 * 86400
    login_failures: int = 10
    """Failed logins per account and per client address within ``login_window_s``; the next
    attempt is answered 429 until the oldest is that old."""
    login_window_s: float = 60.0
    agent_rate_limit: int = 100
    """Requests per agent key per ``rate_window_s``."""
    user_rate_limit: int = 1200
    """Requests per user per ``rate_window_s``."""
    rate_window_s: float = 60.0
    max_enrollment_ttl_s: int = 30 * 86400
    enrollment_max_hosts: int = 1000
    """Hosts a multi-use enrollment token may enroll unless it was given its own number (at
    most ``max_hosts``)."""
    max_hosts: int = 10_000
    """Enrolled hosts (live agent keys) in total; a new host over it is refused."""
    hash_concurrency: int = 2
    """Password hashes and checks (argon2id, 64 MiB each) run at once."""
    hash_queue: int = 32
    """Password checks waiting for a turn; more are answered 503 with Retry-After."""
