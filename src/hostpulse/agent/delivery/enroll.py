"""Enrollment: exchange a one-time token for this host's agent key and keep the key in a file
only its owner can read (mode 0600). Standard library only (the agent's memory budget)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.transport import (
    INGEST_PATH,
    HttpTransport,
    Response,
    Transport,
    TransportError,
)

ENROLL_PATH = "/api/v1/agent/enroll"
KEY_FILE = "agent.key"


class EnrollError(Exception):
    """Enrollment failed; the message says why (never contains the token)."""


def key_path(shipper: ShipperSettings, spool: SpoolSettings) -> Path:
    """``shipper.key_file``, else ``agent.key`` beside the spool directory."""
    if shipper.key_file:
        return Path(shipper.key_file).expanduser()
    return spool.directory().parent / KEY_FILE


def enroll_url(server: str) -> str:
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnrollError(f"shipper.server: expected http(s)://host[:port], got {server!r}")
    path = parts.path.rstrip("/")
    path = path.removesuffix(INGEST_PATH)
    return f"{parts.scheme}://{parts.netloc}{path}{ENROLL_PATH}"


def request_key(
    settings: ShipperSettings,
    token: str,
    host_id: str,
    hostname: str,
    *,
    transport_for: Callable[[str], Transport] | None = None,
) -> str:
    """POST the token to ``/api/v1/agent/enroll`` of the first server URL that answers (a
    connection error, timeout or 5xx moves on to the next); the host's new key."""
    urls = settings.server_urls()
    if not urls:
        raise EnrollError("--enroll needs --server (the hostpulse server's URL)")
    body = json.dumps({"token": token, "host_id": host_id, "hostname": hostname}).encode()
    problems: list[str] = []
    for server in urls:
        if transport_for is not None:
            transport = transport_for(server)
        else:
            transport = HttpTransport(
                enroll_url(server), ca_file=settings.ca_file, verify_tls=settings.verify_tls
            )
        try:
            resp = transport.post(body, {"Content-Type": "application/json"}, settings.timeout)
        except TransportError as exc:
            problems.append(f"cannot reach {server}: {exc}")
            continue
        finally:
            transport.close()
        if resp.status >= 500:
            problems.append(f"{server} answered HTTP {resp.status}")
            continue
        return _key_from(resp)
    raise EnrollError("; ".join(problems))


def _key_from(resp: Response) -> str:
    try:
        answer = json.loads(resp.body)
    except ValueError:
        answer = {}
    if resp.status != 201 or not isinstance(answer, dict) or "key" not in answer:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        raise EnrollError(f"the server refused the enrollment (HTTP {resp.status}): {detail}")
    return str(answer["key"])


def save_key(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_key(path: Path) -> str | None:
    """The key saved at ``path`` (None when there is none)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnrollError(f"shipper.key_file: cannot read {path}: {exc}") from None
    return text or None
