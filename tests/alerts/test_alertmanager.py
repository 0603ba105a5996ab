"""A real Prometheus Alertmanager (Debian package) receives and lists hostpulse alerts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_receivers import LOOPBACK_ALLOW, free_port

from hostpulse.alerts.channels import build_channel, channel_from_dict
from hostpulse.alerts.clock import SystemClock
from hostpulse.alerts.net import SafeHttp, TargetGuard
from hostpulse.alerts.schema import Severity
from hostpulse.alerts.types import AlertView, Kind, Notification, State

BINARY = "/usr/bin/prometheus-alertmanager"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    log = (tmp_path / "am.log").open("wb")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(url + "/api/v2/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "am.log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _notify(url: str, kind: Kind) -> None:
    now = SystemClock().now_ms()
    state = State.RESOLVED if kind is Kind.RESOLVED else State.FIRING
    view = AlertView(
        "a1",
        "disk_full",
        "db-1",
        (("device", "sda1"), ("mountpoint", "/var")),
        state,
        Severity.CRITICAL,
        93.0,
        now - 120_000,
        now if state is State.RESOLVED else None,
    )
    n = Notification(kind, "disk_full", "Filesystem almost full", Severity.CRITICAL, (view,), now)

    async def main() -> None:
        http = SafeHttp(TargetGuard(LOOPBACK_ALLOW))
        try:
            spec = channel_from_dict({"id": "am", "type": "alertmanager", "url": url})
            await build_channel(spec, http, SystemClock()).send(n)
        finally:
            await http.aclose()

    asyncio.run(main())


def test_alertmanager_lists_the_alert_and_sees_it_resolved(alertmanager: str) -> None:
    _notify(alertmanager, Kind.FIRING)
    alerts = _get(alertmanager + "/api/v2/alerts")
    assert len(alerts) == 1
    labels = alerts[0]["labels"]
    assert labels == {
        "alertname": "disk_full",
        "host": "db-1",
        "severity": "critical",
        "source": "hostpulse",
        "device": "sda1",
        "mountpoint": "/var",
    }
    assert alerts[0]["status"]["state"] == "active"
    assert alerts[0]["annotations"]["summary"] == "Filesystem almost full on db-1"
    _notify(alertmanager, Kind.RESOLVED)
    assert _get(alertmanager + "/api/v2/alerts?active=true") == []
