"""The one interface every notification channel implements, and what they share."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, Protocol

import httpx
from pydantic import Field

from hostpulse.alerts.exceptions import DeliveryError, ResolutionError, UnsafeTargetError
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.schema import ID_PATTERN, Severity, Strict
from hostpulse.alerts.types import Notification


class ChannelSpec(Strict):
    """Settings every channel has. Subclasses add a ``type`` literal and their own keys."""

    secret_fields: ClassVar[tuple[str, ...]] = ()

    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    enabled: bool = True
    min_severity: Literal["warning", "critical"] = "warning"
    send_resolved: bool = True

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
