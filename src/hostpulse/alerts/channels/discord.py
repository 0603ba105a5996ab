"""Discord webhook: ``{"content", "embeds": [{title, description, color, fields, timestamp}]}``
(discord.com/developers/docs/resources/webhook#execute-webhook)."""

from __future__ import annotations

from typing import Any, Literal

from hostpulse.alerts import render
from hostpulse.alerts.channels.base import ChannelSpec, post_json
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.types import Notification


class DiscordSpec(ChannelSpec):
    secret_fields = ("url",)  # the webhook URL carries its token
    target_fields = ("url",)

    type: Literal["discord"] = "discord"
    url: str
    username: str = "hostpulse"


def payload(n: Notification, username: str) -> dict[str, Any]:
    color = int(render.COLORS[render.status(n)].lstrip("#"), 16)
    fields = [
        {"name": v.host[:256], "value": render.line(v)[:1024], "inline": False}
        for v in n.alerts[:25]
    ]
    description = n.description or ""
    if len(n.alerts) > 25:
        description += f"\n… and {len(n.alerts) - 25} more"
    embed: dict[str, Any] = {
        "title": n.summary[:256],
        "color": color,
        "fields": fields,
        "timestamp": render.iso(n.created_ms),
    }
    if description:
        embed["description"] = description[:4096]
    return {"username": username, "content": n.summary[:2000], "embeds": [embed]}


class DiscordChannel:
    def __init__(self, spec: DiscordSpec, http: SafeHttp) -> None:
        self.spec = spec
        self._http = http

    async def send(self, notification: Notification) -> None:
        await post_json(
            self._http, "discord", self.spec.url, payload(notification, self.spec.username)
        )
