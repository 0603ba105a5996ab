"""When to try a send again: exponential backoff with jitter, and the server's Retry-After."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``minimum`` up to ``maximum``, each drawn uniformly from the
    upper half of its step (``[max(minimum, step/2), step]``): they grow, they are spread out so
    that many agents coming back after an outage do not arrive in lockstep, and none is ever
    shorter than ``minimum``."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        step = min(self.maximum, self.minimum * 2.0 ** min(self.attempt, 62))
        self.attempt += 1
        return self._rng.uniform(max(self.minimum, step / 2), step)

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date, RFC 9110
    10.2.3); None when absent or unreadable. ``now`` is the wall clock (seconds since the epoch).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    from email.utils import parsedate_to_datetime  # rare: most servers send seconds

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def jitter_after(seconds: float, rng: random.Random) -> float:
    """At least ``seconds``, plus up to 10 % (at most 1 s) so that agents told the same
    Retry-After do not all return in the same instant."""
    return seconds + rng.uniform(0.0, min(1.0, 0.1 * seconds))
