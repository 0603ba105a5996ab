"""A real Prometheus scrapes a real agent and evaluates the shipped rules."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import AgentProcess, wait_for

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules" / "hostpulse.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def prometheus(tmp_path: Path, agent_process: type[AgentProcess]) -> Iterator[str]:
    agent = agent_process("--interval", "1")
    target = agent.url.removeprefix("http://").removesuffix("/metrics")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "hostpulse", "static_configs": [{"targets": [target]}]}],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]
    except OSError:
        return None  # not up yet


def query(base: str, promql: str) -> list[Any]:
    data = api(base, "query", query=promql)
    return data["result"] if data else []


def test_prometheus_scrapes_the_agent(prometheus: str) -> None:
    wait_for(lambda: [r["value"][1] for r in query(prometheus, "up")] == ["1"], 30, "up == 1")
    cores = os.cpu_count()
    wait_for(
        lambda: len(query(prometheus, "node_cpu_core_busy_percent")) == cores,
        30,
        "one node_cpu_core_busy_percent series per core",
    )
    idle = query(prometheus, 'node_cpu_time_seconds_total{mode="idle"}')
    assert sorted(int(r["metric"]["cpu"]) for r in idle) == list(range(cores or 0))
    mounts = query(prometheus, "node_filesystem_usage_percent")
    assert mounts and all({"device", "mountpoint"} <= set(r["metric"]) for r in mounts)

    def rules_evaluated() -> bool:
        data = api(prometheus, "rules")
        if not data:
            return False
        rules = [r for g in data["groups"] for r in g["rules"]]
        return len(rules) == 4 and all(
            r["health"] == "ok" and r["lastEvaluation"][:4] != "0001" for r in rules
        )

    wait_for(rules_evaluated, 30, "the shipped rules to evaluate without errors")
