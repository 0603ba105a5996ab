"""``hostpulse agent`` end to end: --once output, bad configuration, signals, /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import HOSTPULSE, AgentProcess, clean_env

from hostpulse import catalog


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOSTPULSE, *args], capture_output=True, text=True, timeout=60, env=env or clean_env()
    )


def test_once_json_covers_the_catalog() -> None:
    result = run("agent", "--once", "--format", "json", "--label", "env=ci")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    present = {m["name"] for m in doc["metrics"]}
    unsupported = {u["name"]: u["reason"] for u in doc["unsupported"]}
    assert not present & set(unsupported)
    for metric in catalog.METRICS:
        # every Linux metric is reported, or named as unsupported on this machine with a reason
        assert metric.key in present or metric.key in unsupported, metric.key
        if not metric.supported_on("linux"):
            assert metric.key in unsupported
    # the machine-independent core of the catalog is always there, rates included
    must = {
        m.key
        for m in catalog.METRICS
        if m.collector in {"cpu", "memory", "processes", "system", "connections"}
        and m.supported_on("linux")
        and m.key not in {"cpu_frequency_hertz", "cpu_frequency_max_hertz"}
    }
    assert must <= present, must - present
    assert "filesystem_usage_percent" in present
    cores = {m["labels"]["cpu"] for m in doc["metrics"] if m["name"] == "cpu_core_busy_percent"}
    assert len(cores) == os.cpu_count()
    for m in doc["metrics"]:
        assert m["prom_name"] == catalog.get(m["name"]).prom_name
        assert tuple(m["labels"]) == catalog.get(m["name"]).labels
    assert doc["host"]["labels"] == {"env": "ci"}
    assert doc["host"]["hostname"] == os.uname().nodename
    assert doc["processes"]["top_cpu"] and doc["processes"]["top_memory"]
    assert len(doc["processes"]["top_cpu"]) <= 10


def test_once_table() -> None:
    result = run("agent", "--once", "--top-n", "3")
    assert result.returncode == 0, result.stderr
    assert "cpu_core_busy_percent" in result.stdout
    assert "Top processes by memory" in result.stdout


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("interval: [5\n", {}, "agent.yml"),
        ("interval: 5\nsurprise: 1\n", {}, "surprise"),
        ("log:\n  max_bytes: lots\n", {}, "log.max_bytes"),
        ("host_id: ${HOSTPULSE_TEST_UNSET_VAR}\n", {}, "host_id"),
        ("interval: 5\n", {"HOSTPULSE_TOP_N": "x"}, "top_n"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    tmp_path: Path, text: str, env: dict[str, str], key: str
) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(text)
    result = run("agent", "--config", str(path), "--once", env=clean_env(**env))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_flag_exits_2_with_one_line() -> None:
    result = run("agent", "--interval", "0.1", "--once")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "hostpulse agent: configuration error: interval: must be at least 1.0, got 0.1"
    ]


def test_busy_listen_address_exits_2(agent_process: type[AgentProcess]) -> None:
    first = agent_process()
    address = first.url.removeprefix("http://").removesuffix("/metrics")
    result = run("agent", "--listen", address)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "exporter.listen" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_agent_within_2_seconds(
    agent_process: type[AgentProcess], signum: signal.Signals, tmp_path: Path
) -> None:
    log_file = tmp_path / "logs" / "agent.log"
    agent = agent_process("--interval", "1", "--log-file", str(log_file))
    with urllib.request.urlopen(agent.url, timeout=5) as response:
        assert response.status == 200
    started = time.monotonic()
    agent.signal(signum)
    assert agent.proc.wait(5) == 0
    assert time.monotonic() - started < 2.0
    text = log_file.read_text()
    assert "agent started" in text and "agent stopped" in text


def test_metrics_endpoint_serves_cached_readings(agent_process: type[AgentProcess]) -> None:
    agent = agent_process("--interval", "1")
    deadline = time.monotonic() + 10
    body = ""
    while "node_cpu_core_busy_percent" not in body and time.monotonic() < deadline:
        with urllib.request.urlopen(agent.url, timeout=5) as response:
            body = response.read().decode()
    assert "node_cpu_core_busy_percent" in body
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout
    # a scrape reads the cache: many in a row are fast and never run a collector
    started = time.monotonic()
    for _ in range(20):
        with urllib.request.urlopen(agent.url, timeout=5) as response:
            response.read()
    assert time.monotonic() - started < 5.0


def test_typer_app_forwards_to_the_agent_and_lists_it() -> None:
    code = "import sys; from hostpulse.cli.main import main; sys.argv[0] = 'hostpulse'; main()"
    bad = subprocess.run(
        [sys.executable, "-c", code, "agent", "--interval", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "hostpulse agent: configuration error: interval: must be at least 1.0, got 0.0"
    ]
    listed = run("--help")
    assert listed.returncode == 0 and "agent" in listed.stdout and "top" in listed.stdout


def test_agent_process_does_not_import_heavy_modules() -> None:
    # the real command, with Python reporting every import it makes
    result = run("agent", "--once", "--format", "json", env=clean_env(PYTHONPROFILEIMPORTTIME="1"))
    assert result.returncode == 0
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert {"hostpulse", "psutil", "google"} <= imported
    heavy = {"typer", "click", "rich", "pydantic", "fastapi", "sqlalchemy", "numpy", "yaml"}
    assert not imported & heavy, imported & heavy


@pytest.mark.parametrize(
    ("ca", "says"), [("/nonexistent/ca.pem", "does not exist"), ("{yml}", "no PEM certificate")]
)
def test_a_bad_ca_file_exits_2_naming_the_key(tmp_path: Path, ca: str, says: str) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("interval: 5\n")
    result = run("agent", "--server", "https://127.0.0.1:1", "--ca", ca.format(yml=path), "--once")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hostpulse agent: configuration error: shipper.ca_file:")
    assert says in lines[0]
