"""A real server on a loopback port in a background thread, for tests of the server and of its
clients (simulator, dashboard, alerts). It runs uvicorn with its own event loop; ``call`` runs a
coroutine on that loop (to read the store directly while the server runs).

Every route but health/login needs credentials: ``srv.headers("viewer")`` (or ``"editor"``,
``"admin"``) signs in a real user of that role (created through the API on first use) and
``srv.agent_headers("web-1")`` enrolls that host through the API and returns its agent key's
header. The first admin's password is ``srv.admin_password`` (random per server)."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn

from hostpulse.server.app import create_app, open_backends
from hostpulse.server.config import ServerSettings
from hostpulse.server.run import AcceptingServer, bind, url_of, uvicorn_server
from hostpulse.store.base import Store
from hostpulse.store.db import Database

T = TypeVar("T")
START_TIMEOUT_S = 30.0


class Clock:
    """Wall clock with an adjustable offset: ``clock.advance(60)`` moves it a minute on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


Verify = ssl.SSLContext | bool
"""How the helpers below check an ``https://`` server's certificate (httpx's ``verify``)."""


def login(url: str, username: str, password: str, *, verify: Verify = True) -> dict[str, Any]:
    """``POST /api/v1/auth/login`` on the server at ``url``; the TokensOut body."""
    r = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"username": username, "password": password},
        timeout=30,
        verify=verify,
    )
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def enrollment_token(
    url: str,
    admin_token: str,
    host_id: str | None = None,
    *,
    ttl_seconds: int = 3600,
    single_use: bool = True,
    verify: Verify = True,
) -> str:
    """A new enrollment token, created by an admin through the API."""
    r = httpx.post(
        f"{url}/api/v1/enrollment-tokens",
        json={"host_id": host_id, "ttl_seconds": ttl_seconds, "single_use": single_use},
        headers={"authorization": f"Bearer {admin_token}"},
        timeout=30,
        verify=verify,
    )
    r.raise_for_status()
    token: str = r.json()["token"]
    return token


def enroll(url: str, host_id: str, token: str, *, verify: Verify = True) -> str:
    """``POST /api/v1/agent/enroll``: the host's new agent key."""
    r = httpx.post(
        f"{url}/api/v1/agent/enroll",
        json={"token": token, "host_id": host_id},
        timeout=30,
        verify=verify,
    )
    r.raise_for_status()
    key: str = r.json()["key"]
    return key


def agent_key(url: str, admin_token: str, host_id: str, *, verify: Verify = True) -> str:
    """Enroll ``host_id`` with a single-use token bound to it: its agent key."""
    token = enrollment_token(url, admin_token, host_id, verify=verify)
    return enroll(url, host_id, token, verify=verify)


class LiveServer:
    """``with LiveServer(tmp_path) as srv: httpx.get(srv.url + "/api/v1/health")``."""

    def __init__(
        self,
        data_dir: Path,
        clock: Callable[[], float] | None = None,
        *,
        fast_ingest: bool = True,
        **settings: Any,
    ) -> None:
        self.fast_ingest = fast_ingest
        settings.setdefault("maintenance_interval", 3600)
        # tests push and read far more often than a real agent or user; the limits have their
        # own tests with small values (tests/server/security/test_rate_limits.py)
        settings.setdefault("agent_rate_limit", 1_000_000)
        settings.setdefault("user_rate_limit", 1_000_000)
        if "admin_password" not in settings:
            settings["admin_password"] = "pw-" + secrets.token_urlsafe(16)
        self.settings = ServerSettings(host="127.0.0.1", port=0, data_dir=data_dir, **settings)
        pw = self.settings.admin_password
        self.admin_password: str | None = pw.get_secret_value() if pw is not None else None
        self.passwords: dict[str, str] = {}
        """Password of each user created through ``token``."""
        self.announced: list[str] = []
        """Passwords shown by the first start (only when no admin_password was set)."""
        self._tokens: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self.clock: Callable[[], float] = clock or Clock()
        self._sock = bind("127.0.0.1", 0)
        self.url = url_of(self._sock, self.settings.tls)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store: Store | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hostpulse-test-server", daemon=True)
        self._server: Any = None
        self.app: Any = None
        """The running FastAPI app (its ``state``), once started."""

    @property
    def store(self) -> Store:
        assert self._store is not None, "server not started"
        return self._store

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the test thread by start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        async with open_backends(self.settings, self.clock) as (database, store):
            self._store = store
            await self._serve(database, store)

    async def _serve(self, database: Database, store: Store) -> None:
        app = create_app(
            self.settings,
            store,
            self.clock,
            database=database,
            fast_ingest=self.fast_ingest,
            announce=self.announced.append,
        )
        self.app = app
        acceptors = self.settings.acceptors
        self._server = uvicorn_server(
            app, self.settings, AcceptingServer if acceptors else uvicorn.Server
        )
        # with acceptors, they accept the connections (as in run.py)
        serving = asyncio.create_task(self._server.serve(sockets=[] if acceptors else [self._sock]))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started and not serving.done():
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            await asyncio.sleep(0.01)
        if acceptors and not serving.done():
            await self._server.start_acceptors(acceptors, self._sock, app, self.settings)
        self._ready.set()
        await serving

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise RuntimeError(f"test server failed to start: {self._error!r}")
        r = httpx.get(f"{self.url}/api/v1/health", timeout=5, verify=self.verify)
        r.raise_for_status()
        return self

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client needs to trust this server (its own certificate over TLS)."""
        if self.settings.tls_cert is None:
            return True
        return ssl.create_default_context(cafile=str(self.settings.tls_cert))

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)
        self._sock.close()

    # -- credentials ----------------------------------------------------------------------------

    def login(self, username: str, password: str) -> dict[str, Any]:
        """``POST /api/v1/auth/login``; the TokensOut body (raises on a refusal)."""
        return login(self.url, username, password)

    def token(self, role: str = "admin") -> str:
        """An access token of a user with ``role`` (``admin`` is the first admin; ``viewer``
        and ``editor`` users of those names are created through the API on first use)."""
        if role not in self._tokens:
            if role == "admin":
                assert self.admin_password is not None, "no admin password known"
                password = self.admin_password
                self.passwords["admin"] = password
            else:
                password = "pw-" + secrets.token_urlsafe(16)
                r = httpx.post(
                    f"{self.url}/api/v1/users",
                    json={"username": role, "password": password, "role": role},
                    headers=self.headers("admin"),
                    timeout=30,
                )
                r.raise_for_status()
                self.passwords[role] = password
            self._tokens[role] = self.login(role, password)["access_token"]
        return self._tokens[role]

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(role)}"}

    def agent_key(self, host_id: str) -> str:
        """The agent key of ``host_id``, enrolled through the API (an admin's enrollment token
        bound to the host, exchanged at ``POST /api/v1/agent/enroll``) on first use."""
        if host_id not in self._keys:
            self._keys[host_id] = self.enroll(host_id, self.enrollment_token(host_id))
        return self._keys[host_id]

    def enrollment_token(
        self, host_id: str | None = None, *, ttl_seconds: int = 3600, single_use: bool = True
    ) -> str:
        return enrollment_token(
            self.url, self.token("admin"), host_id, ttl_seconds=ttl_seconds, single_use=single_use
        )

    def enroll(self, host_id: str, token: str) -> str:
        """Exchange ``token`` for ``host_id``'s key (which ``agent_headers`` then uses)."""
        self._keys[host_id] = key = enroll(self.url, host_id, token)
        return key

    def agent_headers(self, host_id: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.agent_key(host_id)}"}

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def self_signed(
    directory: Path, name: str = "server", host: str = "127.0.0.1"
) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (IP or DNS name) and its key, made by ``openssl``
    in ``directory``: (cert.pem, key.pem), valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    san = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={san},DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
