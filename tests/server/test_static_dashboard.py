"""The dashboard's files served by a real server: caching headers, SPA fallback, gzip, and no
path traversal out of the folder in any spelling."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hostpulse.server.static import bundled_web_dir
from hostpulse.server.testing import LiveServer

SECRET = "top-secret-outside-the-web-folder"
APP_JS = "console.log('hostpulse app');\n" * 100


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LiveServer]:
    web = tmp_path / "site" / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>hostpulse</title><div id=app></div>")
    (web / "assets" / "index-abc123.js").write_text(APP_JS)
    (web / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "site" / "secret.txt").write_text(SECRET)  # next to the folder, not in it
    (web / "link.txt").symlink_to(tmp_path / "site" / "secret.txt")  # a way out by symlink
    (web / "assets" / "up").symlink_to(tmp_path / "site")
    srv = LiveServer(tmp_path / "data", web_dir=web)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def raw_get(srv: LiveServer, target: str) -> tuple[int, bytes]:
    """GET with the request target exactly as given (no client-side normalisation)."""
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_index_and_assets_have_the_right_cache_headers(site: LiveServer) -> None:
    index = httpx.get(site.url + "/")
    assert index.status_code == 200
    assert "<div id=app>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    asset = httpx.get(site.url + "/assets/index-abc123.js")
    assert asset.status_code == 200
    assert asset.text == APP_JS
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert httpx.get(site.url + "/favicon.svg").headers["cache-control"] == "no-cache"


def test_text_is_gzipped_and_revalidation_answers_304(site: LiveServer) -> None:
    with httpx.Client() as client:
        r = client.get(
            site.url + "/assets/index-abc123.js", headers={"accept-encoding": "identity"}
        )
        assert "content-encoding" not in r.headers
        raw = httpx.get(site.url + "/assets/index-abc123.js", headers={"accept-encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert int(raw.headers["content-length"]) < len(APP_JS) // 10
        again = client.get(site.url + "/", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 200  # a different file's etag does not match
        etag = client.get(site.url + "/").headers["etag"]
        assert client.get(site.url + "/", headers={"if-none-match": etag}).status_code == 304
    assert raw.text == APP_JS


def test_unknown_app_paths_fall_back_to_the_index(site: LiveServer) -> None:
    for path in ("/hosts/web-1", "/alerts", "/settings/users?tab=keys"):
        r = httpx.get(site.url + path)
        assert r.status_code == 200, path
        assert "<div id=app>" in r.text
        assert r.headers["cache-control"] == "no-cache"


def test_api_and_missing_assets_are_not_the_index(site: LiveServer) -> None:
    api = httpx.get(site.url + "/api/v1/nothing-here")
    assert api.status_code == 404
    assert "<div id=app>" not in api.text
    assert httpx.get(site.url + "/api/v1/health").json()  # real routes still win
    missing = httpx.get(site.url + "/assets/gone-123.js")
    assert missing.status_code == 404
    assert httpx.get(site.url + "/api/v1/openapi.json").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/assets/%2E%2E/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/assets/%252e%252e/%252e%252e/secret.txt",
        "/..\\secret.txt",
        "/assets\\..\\..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/..%255csecret.txt",
        "//secret.txt",
        "/%2fsecret.txt",
        "/%2f..%2fsecret.txt",
        "{root}/secret.txt",
        "/{root}/secret.txt",
        "/%2F{root}%2Fsecret.txt",
        "/secret.txt%00.html",
        "/..%00/secret.txt",
        "/index.html%00/../../secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..;/secret.txt",
        "/assets/...%2f...%2fsecret.txt",
        "/link.txt",
        "/assets/up/secret.txt",
    ],
)
def test_no_path_reads_outside_the_folder(site: LiveServer, target: str) -> None:
    root = str(site.settings.web_dir).strip("/")
    target = target.format(root=root)
    status, body = raw_get(site, target)
    assert SECRET.encode() not in body
    # refused, or the app's index (the SPA fallback for a name that is just odd)
    assert status in (400, 404) or (status == 200 and b"<div id=app>" in body), (target, status)


def test_dashboard_answers_carry_the_security_headers(site: LiveServer) -> None:
    for path in ("/", "/hosts/web-1", "/assets/index-abc123.js", "/favicon.svg", "/assets/nope.js"):
        r = httpx.get(site.url + path)
        assert r.status_code in (200, 404), path
        csp = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", path  # no inline, no eval
        assert directives["default-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["object-src"] == "'none'"
        host = site.url.removeprefix("http://")
        assert directives["connect-src"] == f"'self' ws://{host} wss://{host}"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    # a Host header that is not a plain host[:port] is never copied into the policy
    r = httpx.get(site.url + "/", headers={"host": "evil.example;script-src *"})
    assert r.status_code == 200
    assert "evil" not in r.headers["content-security-policy"]
    assert "ws:" not in r.headers["content-security-policy"]


def test_the_bundled_index_has_no_inline_script() -> None:
    html = (bundled_web_dir() / "index.html").read_text()
    for tag in html.split("<script")[1:]:
        opening, _, rest = tag.partition(">")
        assert "src=" in opening, "an inline <script> would be refused by the CSP"
        assert rest.startswith("</script>")


def test_the_bundled_build_is_served_by_default(tmp_path: Path) -> None:
    with LiveServer(tmp_path / "data") as srv:
        r = httpx.get(srv.url + "/")
    index = bundled_web_dir() / "index.html"
    assert r.status_code == 200
    assert r.text == index.read_text()
