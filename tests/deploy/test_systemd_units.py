"""The systemd units in deploy/systemd/ pass ``systemd-analyze verify`` and keep their hardening;
the agent unit is the one the install script writes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from deploykit import ROOT, run

from hostpulse.server.install import agent_script

UNITS = ROOT / "deploy" / "systemd"
HARDENING = (
    "DynamicUser=yes",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "ProtectSystem=strict",
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "SystemCallFilter=@system-service",
    "UMask=0077",
)


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, value = line.split("=", 1)
            found.setdefault(name, []).append(value)
    return found


@pytest.mark.parametrize("name", ["hostpulse-agent.service", "hostpulse-server.service"])
def test_unit_verifies(name: str, tmp_path: Path) -> None:
    """verify checks that ExecStart's program exists: /opt/hostpulse/venv is the test venv here."""
    copy = tmp_path / name
    venv = Path(sys.prefix)
    copy.write_text((UNITS / name).read_text().replace("/opt/hostpulse/venv", str(venv)))
    result = run(["systemd-analyze", "verify", copy], check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_agent_unit_ships_and_keeps_its_state_in_its_state_directory() -> None:
    unit = (UNITS / "hostpulse-agent.service").read_text()
    d = directives(unit)
    for line in HARDENING:
        assert line in unit.splitlines(), line
    assert d["StateDirectory"] == ["hostpulse-agent"]
    assert "HOSTPULSE_SPOOL__DIR=/var/lib/hostpulse-agent/spool" in d["Environment"]
    assert "HOSTPULSE_SHIPPER__KEY_FILE=/var/lib/hostpulse-agent/agent.key" in d["Environment"]
    assert d["EnvironmentFile"] == ["-/etc/hostpulse/agent.env"]
    # it must see every process and read /proc and /sys
    for hiding in ("ProtectProc", "ProcSubset", "PrivatePIDs", "InaccessiblePaths"):
        assert hiding not in d, hiding
    assert d["ProtectHome"] == ["read-only"]
    assert "AF_NETLINK" in d["RestrictAddressFamilies"][0]


def test_agent_unit_is_the_one_the_install_script_writes() -> None:
    script = agent_script("http://monitor.example.com:8400")
    body = script.split("<<'UNIT_EOF'\n", 1)[1].split("UNIT_EOF\n", 1)[0]
    assert body == (UNITS / "hostpulse-agent.service").read_text()


def test_server_unit_keeps_its_store_in_its_state_directory() -> None:
    unit = (UNITS / "hostpulse-server.service").read_text()
    d = directives(unit)
    for line in HARDENING:
        assert line in unit.splitlines(), line
    assert d["ProtectHome"] == ["yes"]
    assert d["StateDirectory"] == ["hostpulse"]
    assert "HOSTPULSE_DATA_DIR=/var/lib/hostpulse" in d["Environment"]
    assert d["ExecStart"] == ["/opt/hostpulse/venv/bin/hostpulse server"]
    assert d["RestartPreventExitStatus"] == ["2"]
