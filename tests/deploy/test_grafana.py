"""The Grafana dashboards, provisioning, Alertmanager and retention examples under deploy/.

Grafana cannot run here, so the test does what Grafana would do with each dashboard: expand its
variables (asking the data source for a query variable's values), then run every panel's query
against a real Prometheus and a real VictoriaMetrics, both scraping a real agent (which also
ships to a real server) and that server's /metrics. A query that errors or returns nothing
(no series, or only NaN) fails the test."""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_process import CliProcess
from promserver import PromError, Prometheus, free_port, wait_until

from hostpulse.server.testing import LiveServer

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
TOKEN = "grafana-test-scrape-token-0123456789"
RATE_INTERVAL = "5s"  # what Grafana makes of $__rate_interval at a 1 s scrape interval
BUILTINS = {
    "__rate_interval": RATE_INTERVAL,
    "__interval": "2s",
    "__range": "1m",
    "__range_s": "60",
}
_VAR = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?(\w+)\)$")


class VictoriaMetrics:
    """victoria-metrics single-node scraping with ``-promscrape.config``, stopped by PID."""

    def __init__(self, directory: Path, prom_config: Path, args: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (directory / "vm.log").open("wb")
        self.proc = subprocess.Popen(
            [
                "victoria-metrics",
                *args,
                f"-storageDataPath={directory / 'vm-data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-promscrape.config={prom_config}",
                "-promscrape.config.strictParse=false",  # the same file as Prometheus
                "-search.latencyOffset=1s",  # default 30 s: recent samples would be hidden
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("victoria-metrics exited")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.log.close()


def api(base: str, path: str, **params: str) -> Any:
    """GET ``base/api/v1/path``; PromError on an error answer (both speak the same API)."""
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    if body.get("status") != "success":
        raise PromError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


@dataclass
class Stack:
    backends: dict[str, str]
    """Name -> base URL of a Prometheus-compatible query API."""
    agent_instance: str
    server_instance: str


def retention_args(path: Path) -> list[str]:
    text = path.read_text()
    match = re.search(r'^ARGS="(.*)"$', text, re.MULTILINE)
    assert match, f"{path} has no ARGS= line"
    return shlex.split(match.group(1))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("grafana")
    with LiveServer(tmp / "data", metrics_token=TOKEN) as srv:
        token_file = tmp / "scrape-token"
        token_file.write_text(TOKEN)
        agent_target = f"127.0.0.1:{free_port()}"
        agent = CliProcess(
            [
                "agent",
                "--listen",
                agent_target,
                "--interval",
                "1",
                "--server",
                srv.url,
                "--enroll",
                srv.enrollment_token("grafana-host"),
                "--host-id",
                "grafana-host",
                "--key-file",
                str(tmp / "agent.key"),
                "--spool-dir",
                str(tmp / "spool"),
                "--log-level",
                "warning",  # nothing reads its output meanwhile: keep the pipe empty
            ]
        )
        with agent:
            wait_until(lambda: _serves(f"http://{agent_target}/metrics"), 30, "the agent")
            server_target = srv.url.removeprefix("http://")
            jobs = [
                {"job_name": "hostpulse", "static_configs": [{"targets": [agent_target]}]},
                {
                    "job_name": "hostpulse-server",
                    "authorization": {"credentials_file": str(token_file)},
                    "static_configs": [{"targets": [server_target]}],
                },
            ]
            prom = Prometheus(tmp / "prom", jobs, extra_args=retention_args(PROM_RETENTION))
            vm_args = [
                a for a in retention_args(VM_RETENTION) if not a.startswith("-storageDataPath")
            ]
            with prom:
                vm = VictoriaMetrics(tmp, prom.config_path, vm_args)
                try:
                    wait_until(vm.ready, 30, "victoria-metrics to be ready")
                    backends = {"prometheus": prom.url, "victoriametrics": vm.url}
                    for name, url in backends.items():
                        # 20 s of samples from both targets, the agent's shipping included
                        wait_until(
                            lambda url=url: (
                                _has(url, "count_over_time(node_cpu_busy_percent[1m]) >= 15")
                                and _has(
                                    url, 'hostpulse_ingest_requests_total{outcome="stored"} >= 15'
                                )
                            ),
                            90,
                            f"20 s of samples in {name}",
                        )
                    yield Stack(backends, agent_target, server_target)
                finally:
                    vm.stop()


PROM_RETENTION = ROOT / "deploy" / "prometheus" / "retention-30d.default"
VM_RETENTION = ROOT / "deploy" / "victoriametrics" / "retention-30d.default"


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _has(base: str, promql: str) -> bool:
    try:
        return bool(api(base, "query", query=promql)["result"])
    except (PromError, OSError):
        return False


def expand(text: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError(f"{text!r}: ${name} is not a variable of the dashboard")
        return values[name]

    return _VAR.sub(one, text)


def variable_values(base: str, dashboard: dict[str, Any]) -> dict[str, str]:
    """What Grafana would substitute: custom variables their selected value, query variables
    ``All`` (their allValue) or their first value, asked from the data source in order."""
    values = dict(BUILTINS)
    for var in dashboard["templating"]["list"]:
        name, kind = var["name"], var["type"]
        if kind == "datasource":
            assert var["query"] == "prometheus"
            values[name] = "unused"
        elif kind == "custom":
            values[name] = var["current"]["value"]
        elif kind == "query":
            query = expand(var["query"]["query"], values)
            m = _LABEL_VALUES.match(query)
            assert m, f"{name}: only label_values(...) variables are expanded here: {query}"
            params = {"match[]": m.group(1)} if m.group(1) else {}
            found = api(base, f"label/{m.group(2)}/values", **params)
            assert found, f"variable ${name} ({query}) has no values"
            values[name] = var["allValue"] if var.get("includeAll") else found[0]
        else:
            raise AssertionError(f"{name}: variable type {kind} is not handled")
    return values


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def finite_values(result: list[dict[str, Any]]) -> int:
    count = 0
    for series in result:
        points = series.get("values") or [series["value"]]
        count += sum(1 for _, v in points if math.isfinite(float(v)))
    return count


def run_target(base: str, expr: str, instant: bool) -> list[dict[str, Any]]:
    if instant:
        result: list[dict[str, Any]] = api(base, "query", query=expr)["result"]
        return result
    end = time.time()
    params = {"query": expr, "start": str(end - 60), "end": str(end), "step": "2s"}
    return list(api(base, "query_range", **params)["result"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["prometheus", "victoriametrics"])
@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_panel_query_returns_data(stack: Stack, backend: str, path: Path) -> None:
    base = stack.backends[backend]
    dashboard = json.loads(path.read_text())
    values = variable_values(base, dashboard)
    failures = []
    checked = 0
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = expand(target["expr"], values)
            try:
                result = run_target(base, expr, bool(target.get("instant")))
            except PromError as exc:
                failures.append(f"{panel['title']!r}: {expr}: {exc}")
                continue
            if not finite_values(result):
                failures.append(f"{panel['title']!r}: {expr}: no data")
            checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 10


def test_the_host_variable_lists_the_agent_and_a_single_host_works(stack: Stack) -> None:
    base = stack.backends["prometheus"]
    dashboard = json.loads((GRAFANA / "dashboards" / "host.json").read_text())
    values = variable_values(base, dashboard)
    assert values["host"] == stack.agent_instance  # single host: the first (only) value
    server = json.loads((GRAFANA / "dashboards" / "server.json").read_text())
    query = next(v for v in server["templating"]["list"] if v["name"] == "instance")
    found = api(base, "label/instance/values", **{"match[]": "hostpulse_build_info"})
    assert found == [stack.server_instance], query


def test_retention_examples_take_effect(stack: Stack) -> None:
    flags = api(stack.backends["prometheus"], "status/flags")
    assert flags["storage.tsdb.retention.time"] == "30d"
    with urllib.request.urlopen(f"{stack.backends['victoriametrics']}/flags", timeout=10) as r:
        text = r.read().decode()
    assert re.search(r'^-retentionPeriod="?30d"?$', text, re.MULTILINE), text


def test_dashboards_are_well_formed() -> None:
    assert {p.stem for p in DASHBOARDS} == {"fleet", "host", "server"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        names = [v["name"] for v in dashboard["templating"]["list"]]
        assert names[0] == "datasource", path
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path
        for panel in panels(dashboard):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (path, panel["title"])
            assert panel["datasource"]["uid"] == "${datasource}", (path, panel["title"])
            assert panel["targets"], (path, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
    assert len(uids) == len(DASHBOARDS)


def test_provisioning_files_point_at_the_dashboards_and_both_backends() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "hostpulse.yml").read_text()
    )
    by_uid = {d["uid"]: d for d in sources["datasources"]}
    assert set(by_uid) == {"prometheus", "victoriametrics"}
    assert all(d["type"] == "prometheus" and d["url"].startswith("http") for d in by_uid.values())
    assert sum(bool(d.get("isDefault")) for d in by_uid.values()) == 1
    boards = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "hostpulse.yml").read_text())
    (provider,) = boards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_alertmanager_config_is_valid() -> None:
    path = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    result = subprocess.run(
        ["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / "hostpulse.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    config = yaml.safe_load(path.read_text())
    for inhibit in config.get("inhibit_rules", []):
        for matcher in inhibit.get("source_matchers", []):
            name = matcher.split("=", 1)[1].strip().strip('"')
            assert name in alerts, f"inhibit rule names an alert the rules do not have: {name}"
