"""The alert engine on the TSDB backend works unchanged: a breaching sample posted to a server
whose samples go to the real Debian ``victoria-metrics`` reaches a real webhook receiver and
shows in the alerts API, with the host as the registry (in the relational database) names it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_server_alerting import _alerts_yml, _post, _Receiver, receiver
from tsdbkit import victoria_metrics

from hostpulse.server.testing import LiveServer

__all__ = ["receiver"]  # the fixture, shared with test_server_alerting


def test_a_breaching_sample_alerts_on_the_tsdb_backend(tmp_path: Path, receiver: _Receiver) -> None:
    port = receiver.server_address[1]
    config = _alerts_yml(tmp_path / "alerts.yml", f"http://127.0.0.1:{port}/hook")
    with (
        victoria_metrics(tmp_path / "vm") as vm,
        LiveServer(tmp_path / "data", alerts_config=config, tsdb_url=vm) as srv,
    ):
        _post(srv, "web-1", 12.0)  # below: nothing is sent
        _post(srv, "web-1", 97.5)
        (sent,) = receiver.wait_for(1)
        assert (sent["rule_id"], sent["severity"], sent["kind"]) == (
            "cpu-hot",
            "critical",
            "firing",
        )
        (alert,) = sent["alerts"]
        assert alert["host"] == "web-1" and alert["value"] == pytest.approx(97.5)
        active = httpx.get(
            f"{srv.url}/api/v1/alerts/active", headers=srv.headers("viewer"), timeout=30
        ).json()
        assert [(a["rule_id"], a["host"]) for a in active] == [("cpu-hot", "web-1")]
