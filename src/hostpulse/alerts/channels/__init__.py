"""Notification channels: one module per channel, registered here explicitly."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from hostpulse.alerts.channels.alertmanager import AlertmanagerChannel, AlertmanagerSpec
from hostpulse.alerts.channels.base import Channel, ChannelSpec
from hostpulse.alerts.channels.discord import DiscordChannel, DiscordSpec
from hostpulse.alerts.channels.email import EmailChannel, EmailSpec
from hostpulse.alerts.channels.slack import SlackChannel, SlackSpec
from hostpulse.alerts.channels.sms import SmsChannel, SmsSpec
from hostpulse.alerts.channels.webhook import WebhookChannel, WebhookSpec
from hostpulse.alerts.clock import Clock
from hostpulse.alerts.net import SafeHttp

AnyChannelSpec = EmailSpec | SlackSpec | DiscordSpec | WebhookSpec | SmsSpec | AlertmanagerSpec
ChannelConfig = Annotated[AnyChannelSpec, Field(discriminator="type")]
_ADAPTER: TypeAdapter[AnyChannelSpec] = TypeAdapter(ChannelConfig)

__all__ = [
    "AnyChannelSpec",
    "Channel",
    "ChannelConfig",
    "ChannelSpec",
    "build_channel",
    "channel_from_dict",
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
