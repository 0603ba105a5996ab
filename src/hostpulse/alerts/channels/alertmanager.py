"""Prometheus Alertmanager: ``POST {url}/api/v2/alerts`` with a list of postable alerts
(labels, annotations, startsAt, endsAt for resolved ones, generatorURL)."""

from __future__ import annotations

from typing import Any, Literal

from hostpulse.alerts import render
from hostpulse.alerts.channels.base import ChannelSpec, post_json
from hostpulse.alerts.net import SafeHttp
from hostpulse.alerts.schema import Duration
from hostpulse.alerts.types import Notification, State


class AlertmanagerSpec(ChannelSpec):
    secret_fields = ("url",)  # a proxy in front of Alertmanager may take a token in the URL
    target_fields = ("url",)

    type: Literal["alertmanager"] = "alertmanager"
    url: str
    generator_url: str = ""
    extra_labels: dict[str, str] = {}
    firing_ttl: Duration = 24 * 3600.0
    """endsAt of a firing alert: Alertmanager resolves it by itself if not re-sent by then."""


def payload(n: Notification, spec: AlertmanagerSpec) -> list[dict[str, Any]]:
    alerts = []
    for v in n.alerts:
        labels = {
            "alertname": n.rule_id,
            "host": v.host,
            "severity": v.severity.label if v.severity else "info",
            "source": "hostpulse",
            **{k: val for k, val in v.labels},
            **spec.extra_labels,
        }
        item: dict[str, Any] = {
            "labels": labels,
            "annotations": {
                "summary": f"{n.rule_title} on {v.display}",
                "description": render.line(v),
                "hostname": v.display,
            },
            "startsAt": render.iso(v.started_at_ms or n.created_ms),
        }
        if v.state is State.RESOLVED or n.resolved:
            item["endsAt"] = render.iso(v.resolved_at_ms or n.created_ms)
        else:
            item["endsAt"] = render.iso(n.created_ms + int(spec.firing_ttl * 1000))
        if spec.generator_url:
            item["generatorURL"] = spec.generator_url
        alerts.append(item)
    return alerts


class AlertmanagerChannel:
    def __init__(self, spec: AlertmanagerSpec, http: SafeHttp) -> None:
        self.spec = spec
        self._http = http

    async def send(self, notification: Notification) -> None:
        url = self.spec.url.rstrip("/") + "/api/v2/alerts"
        await post_json(self._http, "alertmanager", url, payload(notification, self.spec))
