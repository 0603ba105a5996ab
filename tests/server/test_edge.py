"""The server's edge on a real server: the CORS allow-list (none by default), the body limit
of the JSON API (413 with a reason) and the hardening headers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from wire import batch, now_ms, request

from hostpulse.protocol import PROTOBUF_CONTENT_TYPE, codec
from hostpulse.server.config import ServerSettings, describe_error
from hostpulse.server.testing import LiveServer

ALLOWED = "https://ops.example.com"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type",
}


@pytest.fixture
def cors_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "data", cors_origins=f"{ALLOWED}, http://localhost:5173") as srv:
        yield srv


def test_an_allowed_origin_gets_its_preflight_and_answers(cors_server: LiveServer) -> None:
    url = cors_server.url + "/api/v1/alerts/rules"
    pre = httpx.options(url, headers={"origin": ALLOWED, **PREFLIGHT})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in pre.headers
    r = httpx.get(
        cors_server.url + "/api/v1/hosts",
        headers={"origin": ALLOWED, **cors_server.headers("viewer")},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    other = httpx.get(
        cors_server.url + "/api/v1/hosts",
        headers={"origin": "http://localhost:5173", **cors_server.headers("viewer")},
    )
    assert other.headers["access-control-allow-origin"] == "http://localhost:5173"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://ops.example.com.evil.example",
        "http://ops.example.com",
        "null",
    ],
)
def test_a_refused_origin_gets_no_cors_headers(cors_server: LiveServer, origin: str) -> None:
    url = cors_server.url + "/api/v1/alerts/rules"
    pre = httpx.options(url, headers={"origin": origin, **PREFLIGHT})
    assert pre.status_code == 400
    assert "access-control-allow-origin" not in pre.headers
    r = httpx.get(
        cors_server.url + "/api/v1/hosts",
        headers={"origin": origin, **cors_server.headers("viewer")},
    )
    assert r.status_code == 200  # the browser, not the server, withholds the answer
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_headers_at_all_by_default(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "data") as srv:
        pre = httpx.options(
            srv.url + "/api/v1/alerts/rules", headers={"origin": ALLOWED, **PREFLIGHT}
        )
        r = httpx.get(srv.url + "/api/v1/hosts", headers={"origin": ALLOWED, **srv.headers()})
    assert pre.status_code == 405  # no CORS layer: OPTIONS is just an unknown method
    for resp in (pre, r):
        assert not [h for h in resp.headers if h.startswith("access-control-")]


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://ops.example.com/path",
        "ops.example.com",
        "ftp://x.example",
        "https://*.example.com",
    ],
)
def test_bad_origins_are_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ValidationError) as err:
        ServerSettings(cors_origins=value)
    assert describe_error(err.value).startswith("HOSTPULSE_CORS_ORIGINS (cors_origins)")


def test_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTPULSE_CORS_ORIGINS", "https://a.example, http://b.example:8080/")
    assert ServerSettings().cors_origins == ["https://a.example", "http://b.example:8080"]


@pytest.fixture
def small_body_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "data", max_api_body_bytes=2000) as srv:
        yield srv


def rule(name: str, padding: int = 0) -> dict[str, object]:
    return {
        "id": name,
        "metric": "cpu_busy_percent",
        "kind": "threshold",
        "op": ">",
        "warning": 80,
        "critical": 90,
        "description": "x" * padding,
    }


def test_api_bodies_over_the_limit_get_413_with_a_reason(small_body_server: LiveServer) -> None:
    url = small_body_server.url + "/api/v1/alerts/rules"
    auth = small_body_server.headers("editor")
    big = httpx.post(url, json=rule("too-big", 5000), headers=auth)
    assert big.status_code == 413
    assert big.json()["detail"] == (
        f"body is {len(big.request.content)} bytes, the limit is 2000 bytes (max_api_body_bytes)"
    )
    # a chunked body (no Content-Length) is counted as it arrives
    chunks = iter([b'{"id": "chunked", "description": "', b"y" * 3000, b'"}'])
    chunked = httpx.post(url, content=chunks, headers={"content-type": "application/json", **auth})
    assert chunked.status_code == 413
    assert "limit is 2000 bytes" in chunked.json()["detail"]
    ok = httpx.post(url, json=rule("fits"), headers=auth)
    assert ok.status_code == 201, ok.text
    listed = httpx.get(url, headers=auth)
    assert listed.status_code == 200
    assert "too-big" not in listed.text
    assert "fits" in listed.text


def test_a_chunked_body_under_the_limit_reaches_the_route(small_body_server: LiveServer) -> None:
    url = small_body_server.url + "/api/v1/alerts/silences"
    chunks = iter([b'{"matchers": ', b"[]}"])
    r = httpx.post(
        url,
        content=chunks,
        headers={"content-type": "application/json", **small_body_server.headers("editor")},
    )
    assert r.status_code == 422  # read in full and validated by the route, not cut off
    assert "413" not in r.text


def test_ingest_keeps_its_own_larger_limit(small_body_server: LiveServer) -> None:
    start = now_ms() - 60_000
    snaps = [(start + 500 * i, {("cpu_busy_percent", ()): float(i)}) for i in range(120)]
    body = codec.encode(request(batch("big-host", snaps)), encoding="identity")
    assert len(body) > 2000
    r = httpx.post(
        small_body_server.url + "/api/v1/ingest",
        content=body,
        headers={
            "content-type": PROTOBUF_CONTENT_TYPE,
            **small_body_server.agent_headers("big-host"),
        },
    )
    assert r.status_code == 200, r.text


def test_a_non_numeric_content_length_is_a_400(small_body_server: LiveServer) -> None:
    host, port = small_body_server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/alerts/rules HTTP/1.1\r\nHost: x\r\nContent-Length: 1e9\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.split()[1] == b"400"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path / "data") as srv:
        yield srv


@pytest.mark.parametrize(
    ("path", "role", "body", "loc"),
    [
        # Python's JSON parser reads NaN and Infinity; the 422 echoing them could not be encoded
        (
            "/api/v1/alerts/rules",
            "editor",
            '{"id": "a", "kind": "absent", "intervals": NaN}',
            ["body", "absent", "intervals"],
        ),
        (
            "/api/v1/alerts/silences",
            "editor",
            '{"hosts": ["h"], "ends_at": Infinity}',
            ["body", "ends_at"],
        ),
        (
            "/api/v1/users",
            "admin",
            '{"username": "u", "password": "longenough-pw", "role": NaN}',
            ["body", "role"],
        ),
    ],
)
def test_a_refused_non_finite_number_gets_a_422_not_a_500(
    server: LiveServer, path: str, role: str, body: str, loc: list[str]
) -> None:
    headers = {"content-type": "application/json", **server.headers(role)}
    r = httpx.post(server.url + path, content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert any(error["loc"] == loc for error in r.json()["detail"]), r.text


def test_a_422_does_not_echo_the_refused_password_or_secret(server: LiveServer) -> None:
    short = "Tr0ub4dor&3"  # 11 characters: refused
    r = httpx.post(
        server.url + "/api/v1/users",
        json={"username": "bob", "password": short, "role": "viewer"},
        headers=server.headers("admin"),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "password"]
    assert "at least 12 characters" in r.text
    assert short not in r.text
    secret = "hook-signing-secret-0f9a"
    r = httpx.post(
        server.url + "/api/v1/alerts/channels",
        json={"id": "hook", "type": "webhook", "url": "ftp://example.com/", "secret": secret},
        headers=server.headers("editor"),
    )
    assert r.status_code == 422 and "http:// or https://" in r.text
    assert secret not in r.text
