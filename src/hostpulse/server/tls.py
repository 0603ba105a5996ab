"""HTTPS for the server: the certificate and key files are checked when the settings are read
(readable, PEM, and the key belongs to the certificate), so a wrong file stops the server at
start with a message naming the setting rather than failing the first TLS handshake."""

from __future__ import annotations

import ssl
from pathlib import Path

HSTS = "max-age=31536000"
"""``Strict-Transport-Security`` sent on every answer served over TLS (one year)."""


_MARKERS = {"certificate": b"-----BEGIN CERTIFICATE-----", "private key": b"PRIVATE KEY-----"}


def check_readable(path: Path, what: str) -> Path:
    """``path`` when it is a readable PEM file of ``what`` ("certificate" or "private key");
    ValueError saying why not."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{str(path)!r} is a directory, not a {what} file") from None
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {str(path)!r}: {exc.strerror}") from None
    marker = _MARKERS[what]
    if marker not in head:
        raise ValueError(f"{str(path)!r} is not a PEM {what} file (no {marker.decode()} line)")
    return path


def check_pair(cert: Path | None, key: Path | None) -> None:
    """Both or neither; and ``key`` is the private key of ``cert``. ValueError otherwise."""
    if cert is None and key is None:
        return
    if cert is None:
        raise ValueError("tls_key is set but tls_cert is not: give both (--tls-cert, --tls-key)")
    if key is None:
        raise ValueError("tls_cert is set but tls_key is not: give both (--tls-cert, --tls-key)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def encrypted() -> bytes:  # never a pass phrase prompt on the terminal
        raise ValueError(
            f"the private key {str(key)!r} is encrypted: give an unencrypted key "
            "(e.g. openssl pkey -in enc.key -out tls.key), readable only by the server's user"
        )

    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key), password=encrypted)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ValueError(
                f"the private key {str(key)!r} does not belong to the certificate {str(cert)!r}"
            ) from None
        raise ValueError(
            f"cannot load the certificate {str(cert)!r} with the key {str(key)!r}: {reason}"
        ) from None
