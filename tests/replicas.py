"""Several real `hostpulse server` processes on loopback ports sharing one PostgreSQL database
(tests/pgdb.py) and one Redis database: this test session's own database number, claimed with
a lock key so that concurrent sessions on the machine's Redis never share one, and flushed (that
database only) before each cluster starts and at the end."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from cli_process import CliProcess
from pgdb import empty_pg

from hostpulse.server.testing import agent_key, login

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
LOCK = "hostpulse-test-session"
PASSWORD = "replica-admin-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    """A Redis database number (1-15) for this session alone."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    for db in range(1, 16):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=10)
        try:
            if client.set(LOCK, token, nx=True, ex=3600):
                try:
                    yield db
                finally:
                    client.flushdb()
                return
        except redis.RedisError as exc:
            pytest.fail(f"Redis at {REDIS_HOST}:{REDIS_PORT} is needed by this test: {exc}")
        finally:
            client.close()
    pytest.fail("no free Redis database (1-15) for this test session")


def flush(db: int) -> redis.Redis:
    """Empty the session's database (keeping its lock) and return a client of it."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=10)
    token = client.get(LOCK)
    client.flushdb()
    client.set(LOCK, token or b"?", ex=3600)
    return client


@dataclass
class Replica:
    """A running replica; its output is read on (so that it never blocks on a full pipe)."""

    proc: CliProcess
    url: str
    id: str
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.proc.proc.stdout
        assert stdout is not None
        self.lines.append(self.proc.pending)
        for line in stdout:
            self.lines.append(line)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to its PID and wait for its end (SIGKILL after 30 s)."""
        p = self.proc.proc
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self._reader.join(10)
        if p.stdout is not None:
            p.stdout.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Cluster:
    replicas: list[Replica]
    redis: redis.Redis
    database_url: str = ""
    redis_url: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    def admin(self, i: int = 0) -> dict[str, str]:
        url = self.replicas[i].url
        if url not in self._tokens:
            self._tokens[url] = login(url, "admin", PASSWORD)["access_token"]
        return {"authorization": f"Bearer {self._tokens[url]}"}

    def agent_key(self, host_id: str, i: int = 0) -> str:
        if host_id not in self.keys:
            token = self.admin(i)["authorization"].split()[1]
            self.keys[host_id] = agent_key(self.replicas[i].url, token, host_id)
        return self.keys[host_id]

    def members(self) -> list[str]:
        return sorted(m.decode() for m in self.redis.zrange("hostpulse:members", 0, -1))

    def by_id(self, replica_id: str) -> Replica:
        return next(r for r in self.replicas if r.id == replica_id)


def start_replica(
    data_dir: Path, database_url: str, redis_url: str, extra: dict[str, str]
) -> Replica:
    return ready(launch(data_dir, database_url, redis_url, extra))


def launch(data_dir: Path, database_url: str, redis_url: str, extra: dict[str, str]) -> CliProcess:
    """``hostpulse server`` on a free port with these settings (see ``ready``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env.update(
        HOSTPULSE_DATA_DIR=str(data_dir),
        HOSTPULSE_DATABASE_URL=database_url,
        HOSTPULSE_REDIS_URL=redis_url,
        HOSTPULSE_ADMIN_PASSWORD=PASSWORD,
        HOSTPULSE_MAINTENANCE_INTERVAL="3600",
        **extra,
    )
    return CliProcess(["server", "--port", "0", "--log-level", "info"], env=env)


def ready(proc: CliProcess) -> Replica:
    """The launched replica once it has joined the others and listens (killed on failure)."""
    try:
        replica_id = proc.wait_for(r"joined the replicas.*replica='([0-9a-f]+)'", 90).group(1)
        url = proc.url()
    except BaseException:
        proc.stop(signal.SIGKILL)
        raise
    proc.output = ""
    return Replica(proc, url, replica_id)


@pytest.fixture
def start_cluster(
    tmp_path: Path, redis_db: int, pg_database: str
) -> Iterator[Callable[..., Cluster]]:
    """``start_cluster(n, **env)``: n replicas on an emptied PostgreSQL and Redis database,
    the first alone (it creates the schema and the admin), then the others together; all
    stopped (SIGTERM, by PID) at the end."""
    started: list[Replica] = []

    def start(n: int, **extra: str) -> Cluster:
        client = flush(redis_db)
        database_url = empty_pg(pg_database)
        redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
        started.append(start_replica(tmp_path / "r0", database_url, redis_url, extra))
        launched = [launch(tmp_path / f"r{i}", database_url, redis_url, extra) for i in range(1, n)]
        for i, proc in enumerate(launched):
            try:
                started.append(ready(proc))
            except BaseException:
                for rest in launched[i + 1 :]:
                    rest.stop(signal.SIGKILL)
                raise
        return Cluster(list(started), client, database_url, redis_url)

    try:
        yield start
    finally:
        for replica in started:
            replica.stop()


def ingest(url: str, key: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/ingest",
        content=body,
        headers={"authorization": f"Bearer {key}", "content-type": "application/x-protobuf"},
        timeout=30,
    )
