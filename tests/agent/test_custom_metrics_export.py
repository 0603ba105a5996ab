"""Custom metrics on the agent's ``/metrics`` (issue 16 part 3): a real ``hostpulse agent`` reads
a textfile and runs an exec plugin, serves them beside its own metrics with their labels, and a
real Prometheus scrapes it; promtool finds nothing wrong with the text. A textfile line named
like one of the agent's own metrics is skipped (logged with the line) instead of breaking the
whole scrape."""

from __future__ import annotations

import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from promserver import Prometheus, free_port, wait_until

from hostpulse.agent.collectors.custom import CustomCollector

HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))

TEXTFILE = """\
# HELP app_jobs_queued Jobs waiting.
# TYPE app_jobs_queued gauge
app_jobs_queued{queue="mail",prio="high"} 7
app_jobs_queued{queue="sms"} 2
backup_last_success_timestamp_seconds 1.7965e+09
node_cpu_load1 99
this line is not Prometheus text
"""
PLUGIN = 'print(\'plugin_temperature_celsius{sensor="rack 1",unit="c"} 21.5\')'


def test_a_builtin_name_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "app.prom").write_text(TEXTFILE)
    reading = CustomCollector(textfile_dir=str(tmp_path)).collect(1.0)
    names = {s.key for s in reading.samples}
    assert names == {"custom:app_jobs_queued", "custom:backup_last_success_timestamp_seconds"}
    assert any(
        "app.prom:6: the name of one of the agent's own metrics" in e and "node_cpu_load1 99" in e
        for e in reading.errors
    )
    assert any("app.prom:7: not Prometheus text" in e for e in reading.errors)


@pytest.mark.slow
def test_prometheus_scrapes_custom_metrics_from_a_real_agent(tmp_path: Path) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    (textfiles / "app.prom").write_text(TEXTFILE)
    config = tmp_path / "agent.yml"
    plugin = shlex.join([sys.executable, "-c", PLUGIN])
    config.write_text(
        yaml.safe_dump(
            {
                "custom": {
                    "textfile_dir": str(textfiles),
                    "plugins": {"temps": plugin},
                    "plugin_interval": 1,
                },
                "containers": {"enabled": False},
            }
        )
    )
    port = free_port()
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen(
            [
                HOSTPULSE,
                "agent",
                "--config",
                str(config),
                "--interval",
                "1",
                "--listen",
                f"127.0.0.1:{port}",
                "--host-id",
                "export-test",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def scrape() -> str:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return str(resp.read().decode())
            except OSError:
                assert agent.poll() is None, "agent exited:\n" + log.read_text()
                return ""

        wait_until(lambda: "plugin_temperature_celsius" in scrape(), 60, "custom metrics")
        text = scrape()
        lint = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert 'app_jobs_queued{prio="high",queue="mail"} 7.0' in text
        assert text.count("# TYPE node_cpu_load1 ") == 1
        job = {"job_name": "agent", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        with Prometheus(tmp_path / "prom", [job]) as prom:
            wait_until(lambda: prom.query("app_jobs_queued"), 30, "the first scrape")
            assert prom.targets_up().get("agent") == "up"
            queued = {
                (r["metric"]["queue"], r["metric"].get("prio")): r["value"][1]
                for r in prom.query("app_jobs_queued")
            }
            assert queued == {("mail", "high"): "7", ("sms", None): "2"}
            (temp,) = prom.query("plugin_temperature_celsius")
            assert temp["metric"]["sensor"] == "rack 1" and temp["value"][1] == "21.5"
            assert temp["metric"]["job"] == "agent"
            (stamp,) = prom.query("backup_last_success_timestamp_seconds")
            assert float(stamp["value"][1]) == 1.7965e09
            (load,) = prom.query("node_cpu_load1")
            assert float(load["value"][1]) != 99  # the agent's own, not the textfile's
    finally:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(10)
    assert "node_cpu_load1 99" in log.read_text()  # the refused line is logged
