"""Slack incoming webhook: ``{"text": ..., "blocks": [...]}`` (api.slack.com/messaging/webhooks)."""

from __future__ import annotations

from typing import Any, Literal

from hostpulse.alerts import render
from hostpulse.alerts.channels.base import ChannelSpec, post_json
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.types import Notification


class SlackSpec(ChannelSpec):
    secret_fields = ("url",)  # the incoming-webhook URL is the credential
    target_fields = ("url",)

    type: Literal["slack"] = "slack"
    url: str


def payload(n: Notification) -> dict[str, Any]:
    lines = "\n".join(f"• {render.line(v)}" for v in n.alerts[:40])
    if len(n.alerts) > 40:
        lines += f"\n… and {len(n.alerts) - 40} more"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": n.summary[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000] or "-"}},
    ]
    if n.description:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": n.description[:300]}]}
        )
    return {"text": n.summary, "blocks": blocks}


class SlackChannel:
    def __init__(self, spec: SlackSpec, http: SafeHttp) -> None:
        self.spec = spec
        self._http = http

    async def send(self, notification: Notification) -> None:
        await post_json(self._http, "slack", self.spec.url, payload(notification))
