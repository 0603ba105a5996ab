"""The one interface every notification channel implements, and what they share."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, Protocol

import httpx
from pydantic import Field, model_validator

from hostpulse.alerts.exceptions import DeliveryError, ResolutionError, UnsafeTargetError
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.schema import ID_PATTERN, Severity, Strict
from hostpulse.alerts.types import Notification

MASK = "********"
"""What API answers show instead of a secret; sent back unchanged, it keeps the stored value
(unless the channel's target changed)."""


class ChannelSpec(Strict):
    """Settings every channel has. Subclasses add a ``type`` literal and their own keys."""

    secret_fields: ClassVar[tuple[str, ...]] = ()
    """Fields shown as ``MASK`` to everyone (credentials, URLs that carry a token)."""
    secret_maps: ClassVar[tuple[str, ...]] = ()
    """Mappings whose every value is shown as ``MASK`` (webhook ``headers``)."""
    target_fields: ClassVar[tuple[str, ...]] = ()
    """Where and how a notification (and so its secrets) goes. When one of them changes, the
    masked secrets are not carried over: they must be given again."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    enabled: bool = True
    min_severity: Literal["warning", "critical"] = "warning"
    send_resolved: bool = True

    url_fields: ClassVar[tuple[str, ...]] = ("url", "base_url")

    @model_validator(mode="after")
    def _urls(self) -> ChannelSpec:
        for name in self.url_fields:
            value = getattr(self, name, None)
            if not isinstance(value, str) or (value == MASK and name in self.secret_fields):
                continue  # a masked URL sent back: the stored one is checked when saved
            try:
                url = httpx.URL(value)
            except (httpx.InvalidURL, TypeError) as exc:
                raise ValueError(f"{name}: not a valid URL ({exc})") from None
            if url.scheme not in ("http", "https") or not url.host:
                raise ValueError(f"{name}: must be an http:// or https:// URL with a host")
        return self

    @classmethod
    def public_fields(cls) -> tuple[str, ...]:
        """What a viewer may see: the settings every channel has, none of its targets."""
        return ("type", *ChannelSpec.model_fields)

    def targets(self) -> list[str]:
        """URLs this channel sends to (checked by the SSRF guard when saved)."""
        return [v for n in self.url_fields if isinstance(v := getattr(self, n, None), str)]

    def wants(self, n: Notification) -> bool:
        if n.resolved:
            return self.send_resolved
        if n.severity is None:
            return True
        return n.severity >= Severity[self.min_severity.upper()]


class Channel(Protocol):
    @property
    def spec(self) -> ChannelSpec: ...

    async def send(self, notification: Notification) -> None:
        """Deliver or raise DeliveryError (retryable for network errors and 5xx)."""


def check_response(response: httpx.Response, what: str) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    body = response.text[:200]
    if 300 <= code < 400:
        where = response.headers.get("location", "?")
        raise DeliveryError(
            f"{what}: HTTP {code} redirect to {where} not followed", retryable=False, status=code
        )
    retryable = code >= 500 or code in (408, 429)
    raise DeliveryError(f"{what}: HTTP {code}: {body}", retryable=retryable, status=code)


async def send_http(
    http: SafeHttp,
    what: str,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    try:
        response = await http.request("POST", url, content=content, headers=headers, auth=auth)
    except UnsafeTargetError as exc:
        raise DeliveryError(f"{what}: {exc}", retryable=False) from None
    except ResolutionError as exc:
        raise DeliveryError(f"{what}: {exc}", retryable=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    check_response(response, what)
    return response


async def post_json(
    http: SafeHttp, what: str, url: str, payload: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return await send_http(
        http,
        what,
        url,
        content=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
