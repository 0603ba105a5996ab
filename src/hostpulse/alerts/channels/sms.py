"""SMS through a provider's HTTP API, in the shape of Twilio's Messages resource:
``POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`` with form fields
``To``, ``From``, ``Body`` and HTTP basic auth (account SID, auth token); one request per number.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlencode

from pydantic import Field

from hostpulse.alerts.channels.base import ChannelSpec, send_http
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.types import Notification

E164 = r"^\+[1-9][0-9]{6,14}$"


class SmsSpec(ChannelSpec):
    secret_fields = ("account_sid", "auth_token")  # the provider's credentials
    target_fields = ("base_url",)

    type: Literal["sms"] = "sms"
    base_url: str = "https://api.twilio.com"
    account_sid: str = Field(min_length=1)
    auth_token: str = Field(min_length=1)
    from_number: str = Field(pattern=E164)
    to: tuple[str, ...] = Field(min_length=1)
    min_severity: Literal["warning", "critical"] = "critical"


def body(n: Notification) -> str:
    hosts = sorted({a.host for a in n.alerts})
    text = n.summary if len(hosts) <= 5 else f"{n.summary} ({len(hosts)} hosts)"
    return text[:320]


class SmsChannel:
    def __init__(self, spec: SmsSpec, http: SafeHttp) -> None:
        self.spec = spec
        self._http = http

    async def send(self, notification: Notification) -> None:
        spec = self.spec
        url = (
            f"{spec.base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{quote(spec.account_sid, safe='')}/Messages.json"
        )
        text = body(notification)
        for number in spec.to:
            form = urlencode({"To": number, "From": spec.from_number, "Body": text}).encode()
            await send_http(
                self._http,
                "sms",
                url,
                content=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=(spec.account_sid, spec.auth_token),
            )
