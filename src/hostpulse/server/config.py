"""ServerSettings: the one place the server reads its configuration (``HOSTPULSE_*`` environment
variables, then command-line flags on top)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hostpulse.store.db import default_data_dir, is_postgres, postgres_url
from hostpulse.store.types import Retention

__all__ = [
    "ServerSettings",
    "check_data_dir",
    "check_database",
    "default_data_dir",
    "describe_error",
]


MAX_ACCEPTORS = 16
"""The most ingest acceptor processes (``ingest_acceptors``)."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


MAX_DURATION_S = 1000 * 31_557_600
"""The longest duration accepted anywhere (1,000 years): more is a typo, and would overflow
the 64-bit millisecond arithmetic behind it."""


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"5m"``, ``"2h"``, ``"7d"`` or ``"1w"``."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if not text:
            raise ValueError("empty duration")
        unit = text[-1]
        try:
            seconds = float(text[:-1]) * _UNITS[unit] if unit in _UNITS else float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 2h, 7d)") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a non-negative duration")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than {MAX_DURATION_S // 31_557_600:.0f} years")
    return seconds


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOSTPULSE_", extra="forbid")

    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8400, ge=0, le=65535, description="Listen port (0 picks a free one).")
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded store, the signing secret and the server lock live.",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://user@host:5432/dbname keeps users, keys, tokens and alerts "
        "in PostgreSQL (samples stay in the embedded store under data_dir); a path or "
        "sqlite+aiosqlite:/// URL moves the embedded store (and those tables with it). "
        "Default: the embedded SQLite store under data_dir.",
    )
    tsdb_url: str | None = Field(
        default=None,
        description="Keep samples in a Prometheus-compatible TSDB instead of the embedded "
        "store: the root that takes remote write (VictoriaMetrics http://vm:8428, cluster "
        "http://vminsert:8480/insert/0/prometheus, Prometheus http://prometheus:9090 with "
        "--web.enable-remote-write-receiver). Hosts, series and process lists then live in the "
        "relational database. See docs/tsdb.md.",
    )
    tsdb_query_url: str | None = Field(
        default=None,
        validate_default=True,
        description="The root that answers /api/v1/query and /api/v1/query_range (default: "
        "tsdb_url); needed for a VictoriaMetrics cluster "
        "(http://vmselect:8481/select/0/prometheus).",
    )
    tsdb_timeout: float = Field(
        default=10,
        gt=0,
        description="Seconds a remote write or query to the TSDB may take (then the ingest is "
        "answered 503 + Retry-After and the agent sends again).",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0 shares live fan-out, login throttle and rate limits, "
        "revocations and alert ownership between server replicas (docs/scale-out-redis.md). "
        "Default: none, one process keeps all of it in memory.",
    )
    retention_raw: float = Field(default=7 * 86400, description="Keep raw samples this long (7d).")
    retention_minute: float = Field(default=30 * 86400, description="Keep 1-minute rollups (30d).")
    retention_hour: float = Field(default=365 * 86400, description="Keep 1-hour rollups (365d).")
    maintenance_interval: float = Field(
        default=60, gt=0, description="Seconds between compaction/rollup/retention runs."
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Largest ingest body accepted as sent (413 above).",
    )
    max_decompressed_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Largest ingest body after decompression."
    )
    max_api_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest body of any other API request (JSON: rules, channels...; 413 above).",
    )
    ingest_max_pending: int = Field(
        default=256,
        gt=0,
        description="Ingest requests admitted at once (decoding or waiting for the durable "
        "write); more are answered 503 + Retry-After at once, nothing stored.",
    )
    ingest_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Ingest worker processes that decompress, parse, check and prepare ingest "
        "requests beside the server's event loop, on other cores. 0 (the default): all in the "
        "server process, which costs less CPU per sample; 1 frees the event loop of about a "
        "quarter of an ingest request's work, for more requests a second when that loop is "
        "the bottleneck, at 25-35 % more CPU per sample on 2 cores (docs/architecture.md).",
    )
    ingest_acceptors: int | Literal["auto"] = Field(
        default="auto",
        description="Processes that accept the server's connections and read agents' ingest "
        "requests (HTTP, decompress, parse, check) on other cores; the server process then "
        "only authenticates, stores and answers them, and serves every other request, whose "
        "connection an acceptor hands to it. auto (the default): 1 when the server may use "
        "two or more CPUs (affinity and cgroup quota), serves plain HTTP and has no "
        "ingest_workers, else 0. 0: the server process accepts and reads everything itself. "
        "1 or more needs plain HTTP (not with tls_cert).",
    )
    ingest_max_pending_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="Request bytes of the admitted ingest requests together (503 above).",
    )
    overload_retry_after: int = Field(
        default=5, ge=1, le=3600, description="Seconds in Retry-After of an overload 503."
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate (chain) to serve HTTPS; needs tls_key."
    )
    tls_key: Path | None = Field(
        default=None, validate_default=True, description="PEM private key of tls_cert."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma-separated, e.g. "
        "https://ops.example.com); none by default: no CORS headers at all.",
    )
    max_future: float = Field(
        default=300, ge=0, description="Reject samples stamped further than this in the future."
    )
    max_past: float | None = Field(
        default=None,
        description="Reject samples stamped further than this in the past (422); default and "
        "most: retention_raw.",
    )
    max_series_per_host: int = Field(
        default=5000,
        gt=0,
        description="Active series per host: series with a sample, or newly declared, within "
        "series_active_window (a series table declaring more: 422).",
    )
    series_active_window: float = Field(
        default=3600,
        gt=0,
        description="How recently a series must have reported to count against "
        "max_series_per_host (1h): series of removed containers fall out after it.",
    )
    max_hosts: int = Field(
        default=10_000,
        gt=0,
        description="Hosts the server holds in total; a new host over it: 403.",
    )
    enrollment_max_hosts: int = Field(
        default=1000,
        gt=0,
        description="Hosts a multi-use enrollment token may enroll unless it is given its own "
        "max_hosts (up to the server's max_hosts); one more: 403.",
    )
    max_json_bytes: int = Field(
        default=2 * 1024 * 1024,
        gt=0,
        description="Largest JSON ingest body after decompression (protobuf bodies go to "
        "max_decompressed_bytes): parsing JSON costs about 16x its size in memory.",
    )
    max_batches: int = Field(default=100, gt=0, description="Host batches per ingest request.")
    max_series_defs: int = Field(
        default=20_000, gt=0, description="Series definitions per ingest request (all batches)."
    )
    max_snapshots: int = Field(
        default=10_000, gt=0, description="Snapshots per ingest request (all batches)."
    )
    max_samples: int = Field(
        default=1_000_000, gt=0, description="Values per ingest request (all snapshots)."
    )
    max_head_cells: int = Field(
        default=250_000,
        gt=0,
        description="Per batch: distinct timestamps of its snapshots x its series (the cells, "
        "8 bytes each, it may add to the store's in-memory head).",
    )
    max_head_bytes_per_host: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Bytes one host's samples and process lists may hold in the embedded "
        "store's in-memory head (64 MiB; a 150-series host at 5 s needs ~0.3 MiB); a request "
        "over it: 429 until the next maintenance run writes closed windows to disk. 0: no bound.",
    )
    max_head_bytes: int = Field(
        default=8 * 1024 * 1024 * 1024,
        ge=0,
        description="Bytes all hosts' heads may hold together (8 GiB; 10,000 hosts x 150 "
        "series at 5 s need ~3.3 GiB); a request over it: 503. 0: no bound.",
    )
    max_processes: int = Field(
        default=100, gt=0, description="Processes in one snapshot's top_cpu or top_memory list."
    )
    max_host_labels: int = Field(default=64, gt=0, description="Labels of one host.")
    header_timeout: float = Field(
        default=10,
        gt=0,
        description="Seconds a client has to send a request's headers (then "
        "the connection is closed).",
    )
    body_timeout: float = Field(
        default=60, gt=0, description="Seconds a client has to send a request's body (408 after)."
    )
    online_factor: float = Field(
        default=2, gt=0, description="Online while last seen within this many intervals."
    )
    stale_factor: float = Field(
        default=10, gt=0, description="Stale (not yet offline) within this many intervals."
    )
    log_level: str = Field(default="info", description="Logging level.")
    live_heartbeat: float = Field(
        default=15, gt=0, description="Seconds between heartbeats on the live WebSocket."
    )
    live_outbox: int = Field(
        default=256, gt=0, description="Frames a live client may lag behind before it is dropped."
    )
    live_auth_recheck: float = Field(
        default=30,
        gt=0,
        description="Seconds between checks that a live WebSocket's user still exists (it is "
        "also closed at its access token's expiry).",
    )
    live_outbox_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Bytes of frames a live client may lag behind before it is dropped.",
    )
    live_fleet_every: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="Seconds over which fleet-view cards are gathered into one live frame "
        "(0: a frame per ingest request).",
    )
    alerts_config: Path | None = Field(
        default=None,
        description="alerts.yml with rules, channels and silences (see config/alerts.yml).",
    )
    alerts_enabled: bool = Field(default=True, description="Evaluate alert rules on ingest.")
    web_dir: Path | None = Field(
        default=None, description="Serve the dashboard from here instead of the bundled build."
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="Password of the first admin, used only when the database has no user yet "
        "(default: a random one printed once). At least 12 characters.",
    )
    agent_rate_limit: int = Field(
        default=100, gt=0, description="Requests per agent key per rate_limit_window (429 above)."
    )
    user_rate_limit: int = Field(
        default=1200, gt=0, description="Requests per user per rate_limit_window (429 above)."
    )
    rate_limit_window: float = Field(
        default=60, gt=0, description="Window of the rate limits, in seconds (1m)."
    )
    access_token_ttl: float = Field(
        default=900, ge=30, le=86400, description="Lifetime of an access token (15m)."
    )
    refresh_token_ttl: float = Field(
        default=30 * 86400, ge=60, description="Lifetime of a refresh token (30d)."
    )
    password_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Password checks and hashes (argon2id, 64 MiB each) run at once.",
    )
    password_hash_queue: int = Field(
        default=32,
        ge=0,
        le=10_000,
        description="Password checks (logins) waiting for a turn; more are answered 503 with "
        "Retry-After.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (comma-separated, e.g. 127.0.0.1,10.0.0.0/24); "
        "none by default: the client address is the connection's.",
    )

    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that may read GET /metrics (for Prometheus; access tokens "
        "expire). At least 16 characters. Without it /metrics needs a viewer's access token.",
    )

    @field_validator("admin_password")
    @classmethod
    def _admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (e.g. openssl rand -hex 24)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.strip().lower() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.strip().lower()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        from hostpulse.store import resolve

        if value is not None and is_postgres(value):
            postgres_url(value)  # ValueError when it names no database
        elif value is not None:
            resolve(value)  # ValueError naming the URL when it is not a store this server has
        return value

    @field_validator("tsdb_url")
    @classmethod
    def _tsdb_url(cls, value: str | None) -> str | None:
        from hostpulse.store.tsdb.endpoints import endpoints

        if value is not None:
            endpoints(value, "http://query.invalid")  # ValueError: not http(s), a select URL
        return value

    @field_validator("tsdb_query_url")
    @classmethod
    def _tsdb_query_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        from hostpulse.store.tsdb.endpoints import endpoints

        if "tsdb_url" not in info.data:  # tsdb_url itself is wrong and reported as such
            return value
        write = info.data["tsdb_url"]
        if write is None:
            if value is not None:
                raise ValueError("needs tsdb_url (where the samples are written)")
            return value
        endpoints(write, value)  # ValueError: a cluster insert URL needs a query URL
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        from hostpulse.server.cluster.connection import check_url

        return None if value is None else check_url(value)

    @field_validator("retention_raw", "retention_minute", "retention_hour", mode="before")
    @classmethod
    def _duration(cls, value: str | float | int) -> float:
        return parse_duration(value)

    @field_validator("max_past", mode="before")
    @classmethod
    def _past(cls, value: str | float | int | None) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator(
        "max_future",
        "live_auth_recheck",
        "tsdb_timeout",
        "header_timeout",
        "body_timeout",
        "maintenance_interval",
        "series_active_window",
        "live_heartbeat",
        "rate_limit_window",
        "access_token_ttl",
        "refresh_token_ttl",
        mode="before",
    )
    @classmethod
    def _seconds(cls, value: str | float | int) -> float:
        return parse_duration(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        from hostpulse.server.auth.proxies import parse_networks

        return parse_networks(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        from hostpulse.server.edge import parse_origins

        return parse_origins(value)

    @field_validator("ingest_acceptors", mode="before")
    @classmethod
    def _acceptors(cls, value: object) -> object:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if isinstance(value, bool) or not text.isdigit() or int(text) > MAX_ACCEPTORS:
            raise ValueError(f"{value!r} is not auto or a number of processes 0-{MAX_ACCEPTORS}")
        return int(text)

    @field_validator("tls_cert")
    @classmethod
    def _tls_cert(cls, cert: Path | None) -> Path | None:
        from hostpulse.server.tls import check_readable

        return None if cert is None else check_readable(cert, "certificate")

    @field_validator("tls_key")
    @classmethod
    def _tls_key(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        from hostpulse.server.tls import check_pair, check_readable

        if key is not None:
            check_readable(key, "private key")
        if "tls_cert" in info.data:  # else tls_cert itself is wrong and reported as such
            check_pair(info.data["tls_cert"], key)
            acceptors = info.data.get("ingest_acceptors")
            if info.data["tls_cert"] is not None and acceptors not in (None, 0, "auto"):
                raise ValueError(
                    "ingest_acceptors needs plain HTTP (connections are handed between "
                    "processes, which TLS does not allow): set ingest_acceptors to 0 to serve "
                    "HTTPS, or terminate TLS at a proxy in front"
                )
        return key

    @property
    def tls(self) -> bool:
        """Serving HTTPS (both tls_cert and tls_key set)."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def acceptors(self) -> int:
        """How many ingest acceptor processes to start: ``ingest_acceptors``, with ``auto``
        resolved: one on two or more usable CPUs over plain HTTP; none over HTTPS, where
        connections cannot be handed between processes, with ``ingest_workers`` set (the
        other way to use more cores: the acceptor would leave the workers idle), or on one
        CPU, where another process only adds work."""
        if self.ingest_acceptors != "auto":
            return self.ingest_acceptors
        plain = self.tls_cert is None
        return 1 if plain and self.ingest_workers == 0 and usable_cpus() >= 2 else 0

    @property
    def retention(self) -> Retention:
        return Retention(
            raw=int(self.retention_raw),
            minute=int(self.retention_minute),
            hour=int(self.retention_hour),
        )

    @property
    def on_postgres(self) -> bool:
        """The relational state is in PostgreSQL (``database_url`` is a postgresql:// URL)."""
        return self.database_url is not None and is_postgres(self.database_url)

    @property
    def store_url(self) -> str:
        """Where the embedded store keeps its samples: a SQLite ``database_url``, else the
        ``store`` folder of the data directory."""
        if self.database_url is None or self.on_postgres:
            return str(self.data_dir / "store")
        return self.database_url

    @property
    def relational_url(self) -> str:
        """SQLAlchemy URL of the database with users, keys, tokens and alerts: PostgreSQL when
        ``database_url`` says so, else the embedded store's SQLite file."""
        from hostpulse.store import database_url

        if self.database_url is not None and self.on_postgres:
            return postgres_url(self.database_url)
        return database_url(self.store_url)


def _cgroup_cpu_limit() -> tuple[str, str] | None:
    """``(quota, period)`` of this process's cgroup CPU limit (v2, else v1); quota ``max``
    (v2) or ``-1`` (v1) is no limit. None where neither file is readable."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return quota, period
    except (OSError, ValueError):
        pass
    v1 = Path("/sys/fs/cgroup/cpu")
    try:
        return (
            (v1 / "cpu.cfs_quota_us").read_text().strip(),
            (v1 / "cpu.cfs_period_us").read_text().strip(),
        )
    except OSError:
        return None


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, capped by a cgroup CPU quota (a
    container started with ``--cpus 1`` sees every CPU of the host but gets one's time)."""
    cpus = len(os.sched_getaffinity(0))
    limit = _cgroup_cpu_limit()
    if limit is not None:
        quota, period = limit
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    return cpus


def check_data_dir(settings: ServerSettings) -> str | None:
    """Create the data directory and the store's; the problem as a message naming the key when
    that is not possible, else None."""
    from hostpulse.store import resolve

    store_key = (
        "data_dir" if settings.database_url is None or settings.on_postgres else "database_url"
    )
    store_dir = resolve(settings.store_url)[0].parent
    for key, path in (("data_dir", settings.data_dir), (store_key, store_dir)):
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)  # secrets inside
        except OSError as exc:
            return f"HOSTPULSE_{key.upper()} ({key}): cannot create {str(path)!r}: {exc.strerror}"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"HOSTPULSE_{key.upper()} ({key}): {str(path)!r} is not writable"
    return None


def check_database(settings: ServerSettings) -> str | None:
    """With the relational state in PostgreSQL: connect once (and let go) so that a wrong URL,
    an unknown database or a refused login is reported naming the key before the server
    starts; None when it answers (or on SQLite, which needs no check)."""
    if not settings.on_postgres:
        return None
    import asyncio

    from sqlalchemy import text

    from hostpulse.store.db import make_engine

    engine = make_engine(settings.relational_url)

    async def probe() -> None:
        try:
            async with asyncio.timeout(DATABASE_PROBE_TIMEOUT_S), engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect is the operator's to fix, with its text
        shown = engine.url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
        return f"HOSTPULSE_DATABASE_URL (database_url): cannot connect to {shown}: {reason}"
    return None


DATABASE_PROBE_TIMEOUT_S = 15.0


def check_redis(settings: ServerSettings) -> str | None:
    """With ``redis_url`` set: ping Redis once so that a wrong URL or a Redis that is down is
    reported naming the key before the server starts; None when it answers (or without it)."""
    if settings.redis_url is None:
        return None
    import asyncio

    from hostpulse.server.cluster.connection import probe

    return asyncio.run(probe(settings.redis_url))


def describe_error(exc: ValidationError) -> str:
    """One line per bad key, naming it as the user wrote it (``HOSTPULSE_PORT`` / ``--port``)."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"HOSTPULSE_{key.upper()} ({key}): {err['msg']}")
    return "\n".join(lines)
