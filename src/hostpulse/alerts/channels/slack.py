"""Slack incoming webhook: ``{"text": ..., "blocks": [...]}`` (api.slack.com/messaging/webhooks).

Every text that Slack reads as mrkdwn (``text``, section and context blocks) has ``&``, ``<``
and ``>`` escaped (api.slack.com/reference/surfaces/formatting#escaping), so host ids, labels
and hostnames sent by agents cannot form links (``<https://x|Click>``) or mentions
(``<!channel>``, ``<@U123>``). The header block is ``plain_text``, which Slack never parses.
"""

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


def escape(text: str) -> str:
    """Text for a Slack mrkdwn field: the three characters Slack reads as control escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    """Escaped text within ``limit`` characters, never ending inside an entity."""
    out = escape(text)
    if len(out) <= limit:
        return out
    out = out[:limit]
    amp = out.rfind("&")
    return out[:amp] if amp != -1 and ";" not in out[amp:] else out


def payload(n: Notification) -> dict[str, Any]:
    lines = "\n".join(f"• {escape(render.line(v))}" for v in n.alerts[:40])
    if len(n.alerts) > 40:
        lines += f"\n… and {len(n.alerts) - 40} more"
    if len(lines) > 3000:
        lines = lines[:3000].rsplit("\n", 1)[0]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": n.summary[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines or "-"}},
    ]
    if n.description:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(n.description, 300)}]}
        )
    return {"text": escape(n.summary), "blocks": blocks}


class SlackChannel:
    def __init__(self, spec: SlackSpec, http: SafeHttp) -> None:
        self.spec = spec
        self._http = http

    async def send(self, notification: Notification) -> None:
        await post_json(self._http, "slack", self.spec.url, payload(notification))
