"""Claims: how processes that share the alert database (server replicas) agree who announces
what, so that each announcement goes out once (the implementation over Redis is
``hostpulse.server.cluster.ownership.Claims``; a single server has none)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Protocol

from hostpulse.alerts.dispatch import Dispatcher, Job
from hostpulse.alerts.types import AlertView, Notification

logger = logging.getLogger(__name__)


class NotificationClaims(Protocol):
    async def claim(self, n: Notification) -> tuple[AlertView, ...]:
        """The alerts of ``n`` this process may announce now."""
        ...

    async def sent(self, n: Notification) -> None:
        """Every channel has had ``n`` (delivered or given up): the claim is done."""
        ...


class ClaimedSender:
    """Hands notifications to the dispatcher: with claims, only what this process may
    announce, and each claim marked done once every channel has had the notification."""

    def __init__(self, dispatcher: Dispatcher, claims: NotificationClaims | None) -> None:
        self.dispatcher = dispatcher
        self.claims = claims
        self._marks: set[asyncio.Task[None]] = set()

    async def allowed(self, n: Notification) -> Notification | None:
        """``n``, or the part of it this process may announce, or None."""
        if self.claims is None:
            return n
        try:
            alerts = await self.claims.claim(n)
        except Exception:  # Redis down: announce (maybe twice) rather than lose it
            logger.exception("could not claim a notification; sending it anyway")
            alerts = n.alerts
        if not alerts:
            return None
        return n if alerts == n.alerts else replace(n, alerts=alerts)

    def submit(self, n: Notification, jobs: list[Job]) -> None:
        """Queue ``jobs`` (channels' jobs of ``n``)."""
        claims = self.claims
        if claims is None or not jobs:
            for job in jobs:
                self.dispatcher.submit(job)
            return
        left = [len(jobs)]

        def done() -> None:
            left[0] -= 1
            if left[0] == 0:
                task = asyncio.create_task(self._mark_sent(claims, n))
                self._marks.add(task)
                task.add_done_callback(self._marks.discard)

        for job in jobs:
            if not self.dispatcher.submit(replace(job, on_done=done)):
                done()

    @staticmethod
    async def _mark_sent(claims: NotificationClaims, n: Notification) -> None:
        try:
            await claims.sent(n)
        except Exception:
            logger.exception("could not mark a notification sent")
