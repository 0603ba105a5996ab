"""Generic webhook: a JSON document, optionally signed with HMAC-SHA256.

With a ``secret``, the request carries ``X-Hostpulse-Timestamp: <unix seconds>`` and
``X-Hostpulse-Signature: sha256=<hex>``, the HMAC of ``<timestamp>.<raw body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Literal

from pydantic import field_validator

from hostpulse.alerts.channels.base import ChannelSpec, send_http
from hostpulse.alerts.clock import Clock
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.render import status
from hostpulse.alerts.types import Notification


class WebhookSpec(ChannelSpec):
    secret_fields = ("url", "secret")  # a URL's path or query often carries a token
    secret_maps = ("headers",)  # e.g. Authorization
    target_fields = ("url",)

    type: Literal["webhook"] = "webhook"
    url: str
    secret: str = ""
    headers: dict[str, str] = {}

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        """Refused when saved rather than failing every send: names are HTTP tokens, values
        printable ASCII on one line, and the request's own framing is not replaceable."""
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if name.lower() in _FIXED_HEADERS:
                raise ValueError(f"header {name!r} is set by hostpulse and cannot be given")
            if not _HEADER_VALUE.fullmatch(text):
                raise ValueError(f"header {name!r}: the value must be printable ASCII on one line")
        return value


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_FIXED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-type"}


def payload(n: Notification) -> dict[str, Any]:
    return {"version": 1, "status": status(n), "summary": n.summary, **n.to_dict()}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    def __init__(self, spec: WebhookSpec, http: SafeHttp, clock: Clock) -> None:
        self.spec = spec
        self._http = http
        self._clock = clock

    async def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification), separators=(",", ":")).encode()
        headers = {**self.spec.headers, "Content-Type": "application/json"}
        if self.spec.secret:
            ts = str(self._clock.now_ms() // 1000)
            headers["X-Hostpulse-Timestamp"] = ts
            headers["X-Hostpulse-Signature"] = signature(self.spec.secret, ts, body)
        await send_http(self._http, "webhook", self.spec.url, content=body, headers=headers)
