"""Whole system over HTTPS: a real ``hostpulse agent`` ships to a real ``hostpulse server``
serving a self-signed certificate. Trusted through ``--ca`` it delivers; without it, or with
another CA, it refuses the certificate, logs why, stores nothing and keeps the snapshots
spooled, and delivers them once it is given the right CA."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

from system_helpers import (
    ADMIN_PASSWORD,
    HOST_ID,
    METRIC,
    free_port,
    spool_state,
    start_agent,
    start_server,
    stored_timestamps,
    wait_until,
)

from hostpulse.server.testing import agent_key, login, self_signed

REFUSED = "certificate is not trusted"


def test_agent_ships_over_https_only_to_a_certificate_it_trusts(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls", "server")
    other_ca, _ = self_signed(tmp_path / "tls", "other")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    data, spool = tmp_path / "data", tmp_path / "spool"
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    server = start_server(data, port, tmp_path / "server.log", *tls, ca=cert)
    trusted = ssl.create_default_context(cafile=str(cert))
    admin = login(url, "admin", ADMIN_PASSWORD, verify=trusted)["access_token"]
    key = agent_key(url, admin, HOST_ID, verify=trusted)
    try:
        # another CA, then the system's CAs: the handshake fails, nothing is sent
        for i, extra in enumerate((("--ca", str(other_ca)), ())):
            log = tmp_path / f"refused-{i}.log"
            agent = start_agent(url, spool, log, *extra, HOSTPULSE_SHIPPER__API_KEY=key)
            try:
                wait_until(lambda log=log: REFUSED in log.read_text(), 30, "a refused handshake")
                time.sleep(2)  # a few more snapshots spooled, a retry or two
            finally:
                assert agent.terminate() == 0
            out = agent.output()
            assert "retrying in" in out  # a TLS failure is retried, not a rejection
            assert "Traceback" not in out and "server refused" not in out
        refused = spool_state(spool)
        assert refused.get("sent", 0) == refused.get("rejected", 0) == 0
        assert refused["retried"] >= 2
        assert refused["queued"] >= 4

        # the right CA: the backlog and the new snapshots arrive
        agent = start_agent(
            url, spool, tmp_path / "trusted.log", "--ca", str(cert), HOSTPULSE_SHIPPER__API_KEY=key
        )
        try:
            # the backlog and at least one snapshot taken since (CI once stopped the agent
            # when the backlog had arrived but no new snapshot had been queued yet)
            wait_until(
                lambda: (
                    _hosts(url, trusted, admin) and _stored(url, trusted, admin) > refused["queued"]
                ),
                30,
                "the backlog and a new snapshot to arrive over HTTPS",
            )
        finally:
            assert agent.terminate() == 0
        assert REFUSED not in agent.output()
    finally:
        server.terminate()
    counters = spool_state(spool)
    assert counters["queued"] > refused["queued"]
    assert counters["sent"] == counters["queued"]
    assert counters.get("rejected", 0) == 0
    stamps = stored_timestamps(data)
    assert len(stamps) == len(set(stamps)) == counters["queued"]


def _hosts(url: str, context: ssl.SSLContext, token: str) -> list[object]:
    req = urllib.request.Request(
        f"{url}/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=5, context=context) as r:
        hosts: list[object] = json.loads(r.read())
    return hosts


def _stored(url: str, context: ssl.SSLContext, token: str) -> int:
    """How many raw samples of ``METRIC`` (one a snapshot) the server holds for the host."""
    now = int(time.time() * 1000)
    req = urllib.request.Request(
        f"{url}/api/v1/hosts/{HOST_ID}/metrics/{METRIC}/history"
        f"?start={now - 3_600_000}&end={now}&tier=raw&step=60s",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as r:
            doc = json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:  # no sample of it stored yet
            return 0
        raise
    return sum(p["count"] for s in doc["series"] for p in s["points"])
