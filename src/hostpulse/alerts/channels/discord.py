"""Discord webhook: ``{"content", "embeds": [{title, description, color, fields, timestamp}]}``
(discord.com/developers/docs/resources/webhook#execute-webhook).

``allowed_mentions`` is ``{"parse": []}``: nothing in a message pings anyone. On top, every
text has Discord's markdown characters backslash-escaped and ``@`` followed by a zero-width
space, so host ids, labels and hostnames sent by agents cannot form mentions (``@everyone``,
``<@123>``), masked links (``[Click](https://...)``), or formatting.
"""

from __future__ import annotations

import re
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


_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()<#])")
_ZWSP = "\u200b"


def escape(text: str, limit: int) -> str:
    """Text Discord shows as written (within ``limit`` characters, not ending in a lone
    backslash): markdown characters escaped, ``@`` unable to start a mention."""
    out = _MARKDOWN.sub(r"\\\1", text).replace("@", "@" + _ZWSP)
    if len(out) > limit:
        out = out[:limit]
        trailing = len(out) - len(out.rstrip("\\"))
        if trailing % 2:
            out = out[:-1]
    return out


def payload(n: Notification, username: str) -> dict[str, Any]:
    color = int(render.COLORS[render.status(n)].lstrip("#"), 16)
    fields = [
        {
            "name": escape(render.host_text(v), 256),
            "value": escape(render.line(v), 1024),
            "inline": False,
        }
        for v in n.alerts[:25]
    ]
    description = escape(n.description or "", 3900)
    if len(n.alerts) > 25:
        description += f"\n… and {len(n.alerts) - 25} more"
    embed: dict[str, Any] = {
        "title": escape(n.summary, 256),
        "color": color,
        "fields": fields,
        "timestamp": render.iso(n.created_ms),
    }
    if description:
        embed["description"] = description
    return {
        "username": username,
        "content": escape(n.summary, 2000),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


class DiscordChannel:
    def __init__(self, spec: DiscordSpec, http: SafeHttp) -> None:
        self.spec = spec
        self._http = http

    async def send(self, notification: Notification) -> None:
        await post_json(
            self._http, "discord", self.spec.url, payload(notification, self.spec.username)
        )
