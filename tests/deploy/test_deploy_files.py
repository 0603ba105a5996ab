"""The shipped Prometheus config and rules are valid and use our metric names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from hostpulse import catalog

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)


def test_prometheus_config_is_valid(tmp_path: Path) -> None:
    # promtool also checks that the server job's token file exists: check a copy whose
    # credentials_file is a real file (the shipped path is the operator's /etc/prometheus/)
    shutil.copytree(PROMETHEUS, tmp_path / "prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    server_job = next(j for j in config["scrape_configs"] if j["job_name"] == "hostpulse-server")
    assert (
        server_job["authorization"]["credentials_file"] == "/etc/prometheus/hostpulse-metrics-token"
    )
    (tmp_path / "token").write_text("t" * 32)
    server_job["authorization"]["credentials_file"] = str(tmp_path / "token")
    (tmp_path / "prometheus" / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(tmp_path / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    job = config["scrape_configs"][0]
    assert (job["scrape_interval"], job["scrape_timeout"]) == ("15s", "10s")


def test_rules_are_valid_and_use_catalog_names() -> None:
    path = PROMETHEUS / "rules" / "hostpulse.yml"
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load(path.read_text())["groups"][0]["rules"]
    exprs = {r["alert"]: (r["expr"], r["for"]) for r in rules}
    assert exprs["HostHighCpu"] == ("node_cpu_busy_percent > 80", "5m")
    assert exprs["HostHighMemory"] == ("node_memory_usage_percent > 90", "5m")
    assert exprs["HostDiskFull"] == ("node_filesystem_usage_percent > 85", "5m")
    prom_names = {m.prom_name for m in catalog.METRICS}
    for expr, _ in exprs.values():
        for name in re.findall(r"\bnode_[a-z0-9_]+", expr):
            assert name in prom_names, name


def test_systemd_unit_runs_the_agent() -> None:
    unit = (ROOT / "deploy" / "systemd" / "hostpulse-agent.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "hostpulse agent --config /etc/hostpulse/agent.yml" in exec_start
    assert "RestartPreventExitStatus=2" in unit
    assert "KillSignal=SIGTERM" in unit
