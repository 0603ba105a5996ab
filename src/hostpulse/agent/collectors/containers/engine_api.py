"""Names, images and states of containers from the Docker or Podman API socket.

One ``GET /containers/json?all=1`` over the engine's Unix socket (Podman serves the same
Docker-compatible route), with the agent's small HTTP/1.1 client (``agent/http11.py``): no
SDK, nothing to install. The answer is bounded (``MAX_BODY``) and the call times out
(``timeout``); a missing socket, a refused connection or a bad answer means "no names", never
an error of the collector.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from hostpulse.agent.http11 import Connection, ProtocolError, RemoteClosed

logger = logging.getLogger(__name__)

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
MAX_BODY = 8 * 1024 * 1024  # ~8,000 containers' summaries


@dataclass(frozen=True, slots=True)
class EngineContainer:
    id: str
    name: str
    image: str
    state: str
    """created, running, paused, restarting, removing, exited or dead (the engine's word)."""


class EngineError(OSError):
    """The socket exists but the engine did not answer usefully."""


def _unix_connect(path: str) -> Callable[[float], socket.socket]:
    def connect(timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock

    return connect


def list_containers(path: str, timeout: float = 2.0) -> list[EngineContainer]:
    """Every container the engine at ``path`` knows (running or not)."""
    conn = Connection(_unix_connect(path), "localhost")
    try:
        answer = conn.request(
            "GET",
            "/containers/json?all=1",
            {"Accept": "application/json"},
            b"",
            timeout,
            MAX_BODY + 1,
        )
    except (ProtocolError, RemoteClosed, TimeoutError) as exc:
        raise EngineError(f"{path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()
    body = answer.body
    if answer.status != 200:
        raise EngineError(f"{path}: GET /containers/json answered {answer.status}")
    if len(body) > MAX_BODY:
        raise EngineError(f"{path}: the container list is larger than {MAX_BODY} bytes")
    try:
        items = json.loads(body)
    except ValueError:
        raise EngineError(f"{path}: the container list is not JSON") from None
    if not isinstance(items, list):
        raise EngineError(f"{path}: the container list is not a JSON array")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            continue
        names = item.get("Names") or []
        name = names[0].lstrip("/") if names and isinstance(names[0], str) else ""
        image = item.get("Image")
        state = item.get("State")
        out.append(
            EngineContainer(
                id=item["Id"],
                name=name,
                image=image if isinstance(image, str) else "",
                state=state if isinstance(state, str) else "",
            )
        )
    return out
