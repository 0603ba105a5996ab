"""Counters -> per-second rates, from two consecutive readings.

A collector keeps one :class:`Counters` per family of counters and feeds it the raw value of
each series at every collection. The first reading of a series only sets its baseline (no rate
yet); from the second reading on, :meth:`Counters.delta` and :meth:`Counters.rate` answer.

When a counter goes down it either wrapped (it reached its width and started again from 0) or
was reset (the device, interface or process was recreated, the machine rebooted):

* **wrap**: the value dropped by more than half the counter's range, which only happens when
  the previous value was near the top. The delta is ``cur + 2**bits - prev``.
* **reset**: any other drop. We do **not** produce a rate for that interval (the new value was
  accumulated over an unknown part of it, so ``cur / elapsed`` could be far too low or high); the
  new value becomes the baseline and the next interval has a rate again. Never a negative rate.

``bits=None`` means "auto": a counter whose previous value fitted in 32 bits is treated as a
32-bit counter (Linux drivers that keep 32-bit interface counters on 64-bit kernels), otherwise
as a 64-bit one.

When ``now`` did not advance (elapsed <= 0) there is no rate, and the older baseline is kept so
the next reading measures from it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

_HALF_32 = 1 << 31
_HALF_64 = 1 << 63


def counter_delta(prev: float, cur: float, bits: int | None = 64) -> float | None:
    """How much a counter grew from ``prev`` to ``cur``; None when it was reset."""
    if cur >= prev:
        return cur - prev
    if bits is None:
        bits = 32 if prev < (1 << 32) else 64
    span = 1 << bits
    if prev - cur > span // 2 and prev < span:
        return cur + span - prev
    return None


class Counters:
    """Previous raw value and time of every series of one counter family."""

    __slots__ = ("_bits", "_prev")

    def __init__(self, bits: int | None = 64) -> None:
        self._bits = bits
        self._prev: dict[Hashable, tuple[float, float]] = {}

    def delta(self, key: Hashable, value: float, now: float) -> tuple[float, float] | None:
        """``(growth, elapsed seconds)`` since the previous reading of ``key``, or None.

        None on the first reading, after a reset, and when time did not advance.
        """
        prev = self._prev.get(key)
        if prev is None:
            self._prev[key] = (value, now)
            return None
        prev_value, prev_now = prev
        elapsed = now - prev_now
        if elapsed <= 0:
            return None
        self._prev[key] = (value, now)
        grown = counter_delta(prev_value, value, self._bits)
        if grown is None:
            return None
        return grown, elapsed

    def rate(self, key: Hashable, value: float, now: float) -> float | None:
        """Per-second growth of ``key`` since its previous reading, or None (see :meth:`delta`)."""
        d = self.delta(key, value, now)
        if d is None:
            return None
        return d[0] / d[1]

    def retain(self, keys: Iterable[Hashable]) -> None:
        """Forget every series not in ``keys`` (vanished devices, interfaces, processes)."""
        keep = set(keys)
        for key in [k for k in self._prev if k not in keep]:
            del self._prev[key]

    def __len__(self) -> int:
        return len(self._prev)
