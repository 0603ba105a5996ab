"""Notification channels: one module per channel, registered here explicitly."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from hostpulse.alerts.channels.alertmanager import AlertmanagerChannel, AlertmanagerSpec
from hostpulse.alerts.channels.base import MASK, Channel, ChannelSpec
from hostpulse.alerts.channels.discord import DiscordChannel, DiscordSpec
from hostpulse.alerts.channels.email import EmailChannel, EmailSpec
from hostpulse.alerts.channels.slack import SlackChannel, SlackSpec
from hostpulse.alerts.channels.sms import SmsChannel, SmsSpec
from hostpulse.alerts.channels.webhook import WebhookChannel, WebhookSpec
from hostpulse.alerts.clock import Clock
from hostpulse.alerts.exceptions import ConfigError
from hostpulse.alerts.net import SafeHttp

AnyChannelSpec = EmailSpec | SlackSpec | DiscordSpec | WebhookSpec | SmsSpec | AlertmanagerSpec
ChannelConfig = Annotated[AnyChannelSpec, Field(discriminator="type")]
_ADAPTER: TypeAdapter[AnyChannelSpec] = TypeAdapter(ChannelConfig)

__all__ = [
    "MASK",
    "AnyChannelSpec",
    "Channel",
    "ChannelConfig",
    "ChannelSpec",
    "build_channel",
    "channel_from_dict",
    "masked",
    "public",
    "unmask",
]


def channel_from_dict(data: object) -> AnyChannelSpec:
    return _ADAPTER.validate_python(data)


def build_channel(spec: AnyChannelSpec, http: SafeHttp, clock: Clock) -> Channel:
    if isinstance(spec, EmailSpec):
        return EmailChannel(spec, http.guard, clock)
    if isinstance(spec, SlackSpec):
        return SlackChannel(spec, http)
    if isinstance(spec, DiscordSpec):
        return DiscordChannel(spec, http)
    if isinstance(spec, WebhookSpec):
        return WebhookChannel(spec, http, clock)
    if isinstance(spec, SmsSpec):
        return SmsChannel(spec, http)
    return AlertmanagerChannel(spec, http)


def masked(spec: AnyChannelSpec) -> dict[str, Any]:
    """The settings with every secret shown as ``MASK`` (what editors and admins read)."""
    data = spec.model_dump(mode="json")
    for name in spec.secret_fields:
        if data.get(name):
            data[name] = MASK
    for name in spec.secret_maps:
        data[name] = dict.fromkeys(data.get(name) or {}, MASK)
    return data


def public(spec: AnyChannelSpec) -> dict[str, Any]:
    """The settings a viewer reads: no target, no secret (id, name, type, what it sends)."""
    data = spec.model_dump(mode="json")
    return {name: data[name] for name in spec.public_fields() if name in data}


def unmask(spec: AnyChannelSpec, stored: AnyChannelSpec | None) -> AnyChannelSpec:
    """``spec`` as sent by a client, with every ``MASK`` replaced by the stored secret.

    A secret is kept only while the channel's target (``target_fields``: URL, SMTP host and
    port, TLS settings, the SMS provider's base URL) stays the same: otherwise whoever may
    edit the channel could point it at their own server and have the secret sent there.
    Raises ``ConfigError`` naming the field whose secret must be given again.
    """
    data = spec.model_dump(mode="json")
    old = stored.model_dump(mode="json") if type(stored) is type(spec) else None
    if old is None:
        for name in spec.secret_fields:
            if data.get(name) == MASK:
                raise ConfigError(f"{name}: give the value ({MASK} keeps a stored one; none is)")
        for name in spec.secret_maps:
            for key, value in (data.get(name) or {}).items():
                if value == MASK:
                    raise ConfigError(f"{name}.{key}: give the value ({MASK} keeps a stored one)")
        return spec
    for name in spec.target_fields:
        if name in spec.secret_fields and data.get(name) == MASK:
            data[name] = old.get(name)
    changed = [n for n in spec.target_fields if data.get(n) != old.get(n)]
    why = f"the channel's {', '.join(changed)} changed, so give it again instead of {MASK}"
    for name in spec.secret_fields:
        if data.get(name) == MASK:
            if changed:
                raise ConfigError(f"{name}: {why}")
            data[name] = old.get(name, "")
    for name in spec.secret_maps:
        kept = old.get(name) or {}
        values = dict(data.get(name) or {})
        for key, value in values.items():
            if value != MASK:
                continue
            if changed:
                raise ConfigError(f"{name}.{key}: {why}")
            if key not in kept:
                raise ConfigError(f"{name}.{key}: give the value ({MASK} keeps a stored one)")
            values[key] = kept[key]
        data[name] = values
    return channel_from_dict(data)
