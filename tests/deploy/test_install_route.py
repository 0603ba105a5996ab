"""GET /install/agent.sh and /install/<wheel>: what "add host" downloads from the server."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hostpulse import __version__
from hostpulse.server.install import InstallError, agent_script
from hostpulse.server.testing import LiveServer

WHEEL = f"hostpulse-{__version__}-py3-none-any.whl"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "data") as srv:
        yield srv


def test_script_names_this_server_and_is_valid_sh(server: LiveServer, tmp_path: Path) -> None:
    r = httpx.get(f"{server.url}/install/agent.sh", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/x-shellscript")
    assert f'SERVER="{server.url}"' in r.text
    assert f'VERSION="{__version__}"' in r.text
    script = tmp_path / "agent.sh"
    script.write_text(r.text)
    check = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_script_never_carries_a_host_header_into_the_shell(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/install/agent.sh", headers={"host": "x$(reboot)`id`"}, timeout=30)
    assert "reboot" not in r.text and "`id`" not in r.text
    for url in ("http://x$(reboot)", "http://a.b/`id`", "ftp://a.b", "http://a b"):
        with pytest.raises(InstallError):
            agent_script(url)


def test_wheel_is_the_installed_package_without_the_server_extra(
    server: LiveServer, tmp_path: Path
) -> None:
    assert httpx.get(f"{server.url}/install/hostpulse-0.0.1-py3-none-any.whl").status_code == 404
    r = httpx.get(f"{server.url}/install/{WHEEL}", timeout=120)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        info = f"hostpulse-{__version__}.dist-info"
        assert {"hostpulse/__init__.py", "hostpulse/server/agent_install.sh"} <= names
        assert {f"{info}/METADATA", f"{info}/WHEEL", f"{info}/RECORD"} <= names
        assert not any("__pycache__" in n for n in names)
        metadata = zf.read(f"{info}/METADATA").decode()
        requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
        fastapi = [line.replace('"', "'") for line in requires if "fastapi" in line]
        assert any("extra == 'server'" in line for line in fastapi), fastapi
        assert all("extra ==" in line for line in fastapi), fastapi
        # every file's hash and size is in RECORD, as pip checks
        for line in zf.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("RECORD"):
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode() and int(size) == len(data), name
    # built once: the second download is the cached file
    cached = list((tmp_path / "data" / "cache").glob(f"agent-wheel-*/{WHEEL}"))
    assert len(cached) == 1
    again = httpx.get(f"{server.url}/install/{WHEEL}", timeout=60)
    assert again.content == r.content
