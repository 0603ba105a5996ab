"""The dashboard: the built files of ``web/`` (committed in ``src/hostpulse/web``) served with an
SPA fallback.

- ``/assets/*`` have content hashes in their names: cached for a year, ``immutable``.
- ``index.html`` and every other file: ``no-cache`` (revalidated, so a new build shows at once).
- Any other path that is not an API path answers ``index.html`` (the app's router takes it).
- Text files are gzip-compressed once and kept in memory when the client accepts gzip.
- A path that would leave the folder (``..`` in any spelling, backslashes, NUL) is a 404.
- Every answer carries a strict Content-Security-Policy (scripts, styles and connections only
  from this origin; no inline scripts; never framed) and the usual hardening headers.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse

logger = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
_COMPRESSIBLE = {".js", ".css", ".html", ".svg", ".json", ".txt", ".map", ".webmanifest"}
_RESERVED = ("api/", "docs", "redoc")
_SAFE_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'{ws}; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def csp_for(host: str | None) -> str:
    """The policy; ``connect-src`` names ``ws://`` and ``wss://`` of the requested host
    explicitly (for browsers whose ``'self'`` does not cover WebSockets) when the Host header
    is a plain host[:port]."""
    ws = f" ws://{host} wss://{host}" if host and _SAFE_HOST.fullmatch(host) else ""
    return CSP.format(ws=ws)


def security_headers(request: Request) -> dict[str, str]:
    return {**SECURITY_HEADERS, "content-security-policy": csp_for(request.headers.get("host"))}


def bundled_web_dir() -> Path:
    """``src/hostpulse/web`` inside the installed package."""
    return Path(__file__).resolve().parent.parent / "web"


@dataclass(frozen=True, slots=True)
class _Cached:
    mtime_ns: int
    body: bytes
    gz: bytes | None
    etag: str


class Dashboard:
    """Resolves request paths to files under ``root``; keeps encoded bodies in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, _Cached] = {}

    def resolve(self, path: str) -> Path | None:
        """The file for ``path`` (already URL-decoded), or None when there is none or the path
        is not a plain relative path inside the folder."""
        if "\\" in path or "\x00" in path:
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        candidate = self.root.joinpath(*parts).resolve() if parts else self.root
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _load(self, file: Path) -> _Cached:
        mtime = file.stat().st_mtime_ns
        found = self._cache.get(file)
        if found is None or found.mtime_ns != mtime:
            body = file.read_bytes()
            gz = None
            if file.suffix in _COMPRESSIBLE and len(body) > 512:
                gz = gzip.compress(body, compresslevel=9, mtime=0)
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found = _Cached(mtime, body, gz, etag)
            self._cache[file] = found
        return found

    def respond(self, request: Request, file: Path, cache_control: str) -> Response:
        entry = self._load(file)
        media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/javascript", "image/svg+xml"):
            media += "; charset=utf-8"
        headers = {
            "cache-control": cache_control,
            "etag": entry.etag,
            "vary": "Accept-Encoding",
            **security_headers(request),
        }
        if request.headers.get("if-none-match") == entry.etag:
            return Response(status_code=304, headers=headers)
        body = entry.body
        accepts = request.headers.get("accept-encoding", "")
        if entry.gz is not None and "gzip" in accepts:
            body = entry.gz
            headers["content-encoding"] = "gzip"
        if request.method == "HEAD":
            headers["content-length"] = str(len(body))
            return Response(status_code=200, headers=headers, media_type=media)
        return Response(content=body, headers=headers, media_type=media)


def mount_dashboard(app: FastAPI, root: Path) -> None:
    """Register the catch-all route; call after every other route."""
    dashboard = Dashboard(root)
    index = "index.html"

    def not_found(request: Request, text: str = "Not Found") -> Response:
        return PlainTextResponse(text, status_code=404, headers=security_headers(request))

    async def serve(request: Request, path: str) -> Response:
        if path.startswith(_RESERVED):
            return not_found(request)
        file = dashboard.resolve(path)
        if file is not None:
            name = file.relative_to(dashboard.root).as_posix()
            cache = IMMUTABLE if name.startswith("assets/") else NO_CACHE
            return dashboard.respond(request, file, cache)
        segments = path.split("/")
        if path.startswith("assets/") or ".." in segments or "\\" in path or "\x00" in path:
            return not_found(request)
        if any(s in (".", "..") for s in segments):
            return not_found(request)
        page = dashboard.resolve(index)
        if page is None:
            return not_found(request, "The dashboard is not built (run `npm run build` in web/).")
        return dashboard.respond(request, page, NO_CACHE)

    app.add_api_route(
        "/{path:path}", serve, methods=["GET", "HEAD"], include_in_schema=False, name="dashboard"
    )
    logger.debug("dashboard served", extra={"root": str(dashboard.root)})


def mount_api_docs(app: FastAPI, openapi_url: str) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts from the dashboard's folder
    (``api-docs/``, copied there by the web build): nothing is fetched from a CDN, so the pages
    work on a network with no way out."""
    title = f"{app.title} API"

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url="/api-docs/swagger-ui-bundle.js",
            swagger_css_url="/api-docs/swagger-ui.css",
            swagger_favicon_url="/favicon.svg",
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url="/api-docs/redoc.standalone.js",
            redoc_favicon_url="/favicon.svg",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
