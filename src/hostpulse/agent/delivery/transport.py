"""POSTing a request body to the server: one persistent HTTP/1.1 connection (``agent/
http11.py``: the standard library's ``http.client`` would import ``email`` and ``ssl``, 7 MB
of the agent's memory; httpx would add about 12 MB). The agent sends one request at a time from
one thread and needs nothing more; ``ssl`` is imported only for an ``https://`` server.

The ``Transport`` protocol is the seam tests and other senders plug into.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast
from urllib.parse import urlsplit

from hostpulse.agent.http11 import Connection, RemoteClosed

if TYPE_CHECKING:
    import ssl

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


_STALE = (RemoteClosed, BrokenPipeError, ConnectionResetError)


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
    import ssl

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
        # an ASCII host name as bytes: a str would load the idna codec (and unicodedata)
        self._address: str | bytes = self._host.encode() if self._host.isascii() else self._host
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self._context: ssl.SSLContext | None = None
        if self._https:
            self._context = tls_context(ca_file, verify_tls, verify_hostname)
        host_header = parts.netloc.rpartition("@")[2]
        self._conn = Connection(self._open, host_header)

    def _open(self, timeout: float) -> socket.socket:
        address = cast(str, self._address)  # getaddrinfo takes bytes too (typeshed: str)
        sock = socket.create_connection((address, self._port), timeout=timeout)
        if self._context is None:
            return sock
        try:
            return self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        reused = self._conn.is_open
        try:
            return self._post_once(body, headers, timeout)
        except TransportError as exc:
            if not (reused and exc.stale):
                raise
        # a kept-alive connection the server had closed while idle: one fresh attempt
        return self._post_once(body, headers, timeout)

    def _post_once(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        try:
            answer = self._conn.request(
                "POST", self._path, headers, body, timeout, MAX_RESPONSE_BYTES
            )
        except OSError as exc:
            if self._https:
                import ssl

                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise TransportError(
                        f"TLS: the server's certificate is not trusted ({exc.verify_message}); "
                        "give its CA with --ca / shipper.ca_file"
                    ) from None
            stale = isinstance(exc, _STALE)
            raise TransportError(f"{type(exc).__name__}: {exc}", stale=stale) from None
        return Response(answer.status, answer.headers, answer.body)

    def close(self) -> None:
        self._conn.close()
