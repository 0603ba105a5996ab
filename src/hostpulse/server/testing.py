"""A real server on a loopback port in a background thread, for tests of the server and of its
clients (simulator, dashboard, alerts). It runs uvicorn with its own event loop; ``call`` runs a
coroutine on that loop (to read the store directly while the server runs)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from hostpulse.server.app import create_app, open_default_store
from hostpulse.server.config import ServerSettings
from hostpulse.server.run import bind, url_of, uvicorn_server
from hostpulse.store.base import Store

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
        self.settings = ServerSettings(host="127.0.0.1", port=0, data_dir=data_dir, **settings)
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
        store = open_default_store(self.settings, self.clock)
        await store.start()
        self._store = store
        try:
            app = create_app(self.settings, store, self.clock, fast_ingest=self.fast_ingest)
            self.app = app
            self._server = uvicorn_server(app, self.settings)
            serving = asyncio.create_task(self._server.serve(sockets=[self._sock]))
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._server.started and not serving.done():
                if time.monotonic() > deadline:
                    raise TimeoutError("server did not start")
                await asyncio.sleep(0.01)
            self._ready.set()
            await serving
        finally:
            await store.close()

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
