"""HTTPS on the server: the certificate and key are checked at start (exit 2 naming the key),
the server answers over TLS with HSTS, and plain HTTP has no HSTS."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cli_process import CliProcess, run_cli
from pydantic import ValidationError

from hostpulse.server.config import ServerSettings, describe_error
from hostpulse.server.testing import LiveServer, self_signed


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(d, "server")
    _, other_key = self_signed(d, "other")
    enc = d / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:x", "-out", str(enc)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return {"cert": cert, "key": key, "other_key": other_key, "encrypted": enc, "dir": d}


def error_of(pems: dict[str, Path], cert: str | None, key: str | None) -> str:
    given = {
        name: pems[value] if value in pems else Path(value)
        for name, value in (("tls_cert", cert), ("tls_key", key))
        if value is not None
    }
    with pytest.raises(ValidationError) as err:
        ServerSettings(**given)
    return describe_error(err.value)


@pytest.mark.parametrize(
    ("cert", "key", "names", "says"),
    [
        ("/nonexistent/server.crt", "key", "HOSTPULSE_TLS_CERT (tls_cert)", "does not exist"),
        ("dir", "key", "HOSTPULSE_TLS_CERT (tls_cert)", "is a directory"),
        ("key", "key", "HOSTPULSE_TLS_CERT (tls_cert)", "not a PEM certificate"),
        ("cert", "/nonexistent/server.key", "HOSTPULSE_TLS_KEY (tls_key)", "does not exist"),
        ("cert", "cert", "HOSTPULSE_TLS_KEY (tls_key)", "not a PEM private key"),
        ("cert", None, "HOSTPULSE_TLS_KEY (tls_key)", "tls_cert is set but tls_key is not"),
        (None, "key", "HOSTPULSE_TLS_KEY (tls_key)", "tls_key is set but tls_cert is not"),
        ("cert", "other_key", "HOSTPULSE_TLS_KEY (tls_key)", "does not belong to the certificate"),
        ("cert", "encrypted", "HOSTPULSE_TLS_KEY (tls_key)", "is encrypted"),
    ],
)
def test_bad_tls_files_are_refused_naming_the_key(
    pems: dict[str, Path], cert: str | None, key: str | None, names: str, says: str
) -> None:
    message = error_of(pems, cert, key)
    assert message.startswith(names), message
    assert says in message


def test_unreadable_key_is_refused(pems: dict[str, Path]) -> None:
    # (the suite runs as root, who reads any file whatever its mode: a path that cannot be
    # opened at all stands for an unreadable file)
    message = error_of(pems, "cert", str(pems["key"] / "inner.key"))
    assert message.startswith("HOSTPULSE_TLS_KEY (tls_key)")
    assert "cannot read the private key file" in message and "Not a directory" in message


@pytest.mark.parametrize("command", ["server", "up"])
def test_server_and_up_exit_2_on_a_mismatched_pair(
    pems: dict[str, Path], tmp_path: Path, command: str
) -> None:
    r = run_cli(
        [
            command,
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
            "--tls-cert",
            str(pems["cert"]),
            "--tls-key",
            str(pems["other_key"]),
        ]
    )
    assert r.returncode == 2, r.stderr
    assert "HOSTPULSE_TLS_KEY (tls_key)" in r.stderr and "does not belong" in r.stderr
    assert "Traceback" not in r.stderr


def test_serves_https_with_hsts(pems: dict[str, Path], tmp_path: Path) -> None:
    with LiveServer(tmp_path / "data", tls_cert=pems["cert"], tls_key=pems["key"]) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=srv.verify) as client:
            for path in ("/api/v1/health", "/", "/api/v1/nothing"):
                r = client.get(srv.url + path)
                assert r.headers["strict-transport-security"] == "max-age=31536000", path
        with pytest.raises(httpx.ConnectError):  # not trusted without its certificate
            httpx.get(srv.url + "/api/v1/health")
    with LiveServer(tmp_path / "plain") as plain:
        r = httpx.get(plain.url + "/api/v1/health")
        assert r.status_code == 200
        assert "strict-transport-security" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"


def test_up_over_tls_feeds_its_own_agent_through_the_pinned_certificate(tmp_path: Path) -> None:
    # issued for a name only (not for 127.0.0.1): the local agent trusts exactly this
    # certificate, whatever names it carries
    cert, key = self_signed(tmp_path / "tls", "up", host="monitor.example.com")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    args = ["up", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key)]
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the test client connects by address, like the agent
    with CliProcess([*args, "--log-level", "warning"], env) as up:
        url = up.wait_for(r"hostpulse is up: (https://\S+)").group(1)
        deadline = time.monotonic() + 60
        with httpx.Client(verify=context, timeout=10) as client:
            hosts: list[object] = []
            while not hosts and time.monotonic() < deadline:
                hosts = client.get(f"{url}/api/v1/hosts").json()
                time.sleep(0.2)
        assert len(hosts) == 1, "the local agent did not deliver over HTTPS"
        rest = up.stop()
    assert "not trusted" not in rest and "Traceback" not in rest
