"""Container metrics end to end: an agent reading a fixture cgroup tree ships them to a real
server, which stores them and serves their history per container."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from system_helpers import (
    ADMIN_PASSWORD,
    HOST_ID,
    enrollment_token,
    free_port,
    start_agent,
    start_server,
)

from hostpulse.agent.collectors.containers.fixture import build_v2, container_id


def get(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_container_history_through_the_server(tmp_path: Path) -> None:
    from hostpulse.server.testing import login

    cgroups = tmp_path / "cgroup"
    layout = build_v2(cgroups, n_docker=2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path / "data", port, tmp_path / "server.log")
    agent = None
    try:
        agent = start_agent(
            url,
            tmp_path / "spool",
            tmp_path / "agent.log",
            enroll=enrollment_token(url),
            HOSTPULSE_CONTAINERS__CGROUP_ROOT=str(cgroups),
            HOSTPULSE_CONTAINERS__SOCKETS="",
        )
        admin = login(url, "admin", ADMIN_PASSWORD)["access_token"]
        short = container_id(1)[:12]
        query = urllib.parse.urlencode({"label.id": short})
        history = f"{url}/api/v1/hosts/{HOST_ID}/metrics/container_memory_usage_bytes/history"
        deadline = time.monotonic() + 60
        series: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                series = get(f"{history}?{query}", admin)["series"]
            except urllib.error.HTTPError as exc:
                assert exc.code == 404, exc  # the host is not known until its first batch
            if series and series[0]["points"]:
                break
            time.sleep(0.5)
        assert series, "no container series stored:\n" + agent.output()
        assert len(series) == 1  # one container picked by its label
        assert series[0]["labels"] == {
            "id": short,
            "name": short,
            "image": "",
            "runtime": "docker",
        }
        values = {p[1] if isinstance(p, list) else p["value"] for p in series[0]["points"]}
        assert values == {float(layout[1].memory)}
        # every container of the tree is there, podman and containerd ones included
        everything = get(history, admin)["series"]
        assert {s["labels"]["runtime"] for s in everything} == {"docker", "podman", "containerd"}
        # the catalog the server serves names them as cAdvisor does
        names = {m["key"]: m["prom_name"] for m in get(f"{url}/api/v1/catalog", admin)}
        assert names["container_cpu_usage_seconds"] == "container_cpu_usage_seconds_total"
    finally:
        if agent is not None:
            agent.kill()
        server.kill()
