"""Group commit for the TSDB backend's writes: what concurrent ingest requests submit while
earlier writes are in flight is sent together, in one remote-write POST (or one database
insert), so the fixed cost of a request (HTTP, a transaction) is paid per group, not per agent
request. Each submitter still waits for its own items to be acknowledged."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

Send = Callable[[list[T]], Awaitable[Sequence[BaseException | None]]]
"""Sends a group; the outcome of each item (None: acknowledged)."""


class GroupWriter(Generic[T]):
    """At most ``slots`` groups in flight; a group holds what was pending when it was taken,
    up to ``max_weight`` (an item heavier than that goes alone)."""

    def __init__(self, send: Send[T], *, slots: int, max_weight: int) -> None:
        self._send = send
        self._slots = slots
        self._max_weight = max_weight
        self._pending: deque[tuple[T, int, asyncio.Future[None]]] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, items: Sequence[tuple[T, int]]) -> None:
        """Send ``(item, weight)`` pairs; returns when all are acknowledged, else raises the
        first item's error."""
        if not items:
            return
        loop = asyncio.get_running_loop()
        futures = []
        for item, weight in items:
            fut: asyncio.Future[None] = loop.create_future()
            self._pending.append((item, weight, fut))
            futures.append(fut)
        if self._running < self._slots:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    def _take(self) -> list[tuple[T, int, asyncio.Future[None]]]:
        group: list[tuple[T, int, asyncio.Future[None]]] = []
        weight = 0
        while self._pending:
            w = self._pending[0][1]
            if group and weight + w > self._max_weight:
                break
            group.append(self._pending.popleft())
            weight += w
        return group

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._take()
                try:
                    outcomes = await self._send([item for item, _, _ in group])
                except asyncio.CancelledError as exc:  # shutting down: nobody is left waiting
                    for _, _, fut in [*group, *self._pending]:
                        if not fut.done():
                            fut.set_exception(exc)
                    self._pending.clear()
                    raise
                except Exception as exc:  # every waiter of the group gets it
                    outcomes = [exc] * len(group)
                for (_, _, fut), outcome in zip(group, outcomes, strict=True):
                    if fut.done():
                        continue
                    if outcome is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(outcome)
        finally:
            self._running -= 1
