"""The Compose files are valid against the Compose specification's JSON schema (the copy that
check-jsonschema ships, pinned in pyproject.toml) and wire what the docs say; the HAProxy
config is accepted by haproxy itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import ROOT, run

COMPOSE = ROOT / "deploy" / "compose"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE / name).read_text())
    return data


@pytest.mark.parametrize("name", ["one-box.yml", "scale-out.yml"])
def test_compose_file_matches_the_compose_schema(name: str) -> None:
    result = run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", COMPOSE / name],
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  server:\n    ports: 8400\n    pid_mode: host\n")
    result = run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", broken],
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr


def test_one_box_agent_sees_the_host() -> None:
    services = load("one-box.yml")["services"]
    agent = services["agent"]
    assert agent["pid"] == "host"
    assert agent["network_mode"] == "host"
    binds = {v["source"]: v for v in agent["volumes"] if isinstance(v, dict)}
    # the host's /, /proc and /sys, read-only, where --host-root /host reads them
    assert {src: (b["target"], b["read_only"]) for src, b in binds.items()} == {
        "/": ("/host", True),
        "/proc": ("/host/proc", True),
        "/sys": ("/host/sys", True),
    }
    assert binds["/"]["bind"]["propagation"] == "rslave"  # mounts made later show up too
    assert agent["environment"]["HOSTPULSE_HOST_ROOT"] == "/host"
    assert agent["environment"]["HOSTPULSE_SHIPPER__SERVER"] == "http://127.0.0.1:8400"
    assert agent["depends_on"]["server"]["condition"] == "service_healthy"
    assert services["server"]["volumes"] == ["server-data:/var/lib/hostpulse"]


def test_scale_out_stack() -> None:
    services = load("scale-out.yml")["services"]
    assert {"server", "haproxy", "postgres", "redis", "victoriametrics", "grafana"} <= set(services)
    assert services["server"]["deploy"]["replicas"] == 3
    url = services["server"]["environment"]["HOSTPULSE_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://hostpulse:")
    assert (
        "../haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"
        in (services["haproxy"]["volumes"])
    )


def test_haproxy_config_is_valid_and_checks_readiness() -> None:
    cfg = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    result = run(["haproxy", "-c", "-f", cfg], check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "option httpchk GET /api/v1/ready" in cfg.read_text()
