"""POSTing a request body to the server: one persistent HTTP/1.1 connection over the standard
library's ``http.client`` (httpx would add about 12 MB to the agent's resident memory; the agent
sends one request at a time from one thread and needs nothing more).

The ``Transport`` protocol is the seam tests and other senders plug into.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

INGEST_PATH = "/api/v1/ingest"
MAX_RESPONSE_BYTES = 64 * 1024


class TransportError(Exception):
    """No HTTP response: connection refused or cut, timeout, TLS failure. ``stale``: the
    connection was closed by the other side (as a server does to idle keep-alive ones)."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Transport(Protocol):
    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response: ...

    def close(self) -> None: ...


def ingest_url(server: str) -> str:
    """The ingest endpoint for ``--server``: a base URL gets ``/api/v1/ingest`` appended; a URL
    that already ends with it is used as is. ValueError for anything but http(s)://host."""
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http(s)://host[:port][/path], got {server!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(INGEST_PATH):
        path += INGEST_PATH
    return f"{parts.scheme}://{parts.netloc}{path}"


def tls_context(
    ca_file: str | None, verify: bool = True, verify_hostname: bool = True
) -> ssl.SSLContext:
    """The client context: the system's CAs, or only those in ``ca_file`` (which may also be
    the server's own self-signed or leaf certificate: partial chains are accepted, as curl
    does). ``ssl.SSLError``/``OSError`` for an unreadable or non-PEM ``ca_file``."""
    context = ssl.create_default_context(cafile=ca_file)
    if ca_file is not None:
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not verify_hostname:
        context.check_hostname = False
    return context


class HttpTransport:
    """Keeps one connection open between requests; reconnects after any failure."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        verify_tls: bool = True,
        verify_hostname: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path or "/"
        self._context: ssl.SSLContext | None = None
        if self._https:
            self._context = tls_context(ca_file, verify_tls, verify_hostname)
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        reused = self._conn is not None
        try:
            return self._post_once(body, headers, timeout)
        except TransportError as exc:
            if not (reused and exc.stale):
                raise
        # a kept-alive connection the server had closed while idle: one fresh attempt
        return self._post_once(body, headers, timeout)

    def _post_once(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        conn = self._conn or self._connect(timeout)
        self._conn = conn
        try:
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.request("POST", self._path, body=body, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES)
            rest = resp.read(1)  # a response larger than we care about: do not reuse
            status, hdrs = resp.status, {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close or rest:
                self.close()
            return Response(status, hdrs, data)
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise TransportError(
                f"TLS: the server's certificate is not trusted ({exc.verify_message}); "
                "give its CA with --ca / shipper.ca_file"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            stale = isinstance(exc, _STALE)
            raise TransportError(f"{type(exc).__name__}: {exc}", stale=stale) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
