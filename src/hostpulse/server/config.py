"""ServerSettings: the one place the server reads its configuration (``HOSTPULSE_*`` environment
variables, then command-line flags on top)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hostpulse.store.types import Retention


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/hostpulse`` or ``~/.local/share/hostpulse``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hostpulse"


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{value!r} is not a non-negative duration")
    return seconds


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOSTPULSE_", extra="forbid")

    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8400, ge=0, le=65535, description="Listen port (0 picks a free one).")
    data_dir: Path = Field(default_factory=default_data_dir, description="Where the store lives.")
    database_url: str | None = Field(
        default=None, description="Store URL; default: the embedded SQLite store under data_dir."
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
    max_series_per_host: int = Field(default=5000, gt=0, description="Distinct series per host.")
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

        if value is not None:
            resolve(value)  # ValueError naming the URL when it is not a store this server has
        return value

    @field_validator("retention_raw", "retention_minute", "retention_hour", mode="before")
    @classmethod
    def _duration(cls, value: str | float | int) -> float:
        return parse_duration(value)

    @field_validator(
        "max_future",
        "maintenance_interval",
        "live_heartbeat",
        "rate_limit_window",
        "access_token_ttl",
        "refresh_token_ttl",
        mode="before",
    )
    @classmethod
    def _seconds(cls, value: str | float | int) -> float:
        return parse_duration(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        from hostpulse.server.edge import parse_origins

        return parse_origins(value)

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
        return key

    @property
    def tls(self) -> bool:
        """Serving HTTPS (both tls_cert and tls_key set)."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def retention(self) -> Retention:
        return Retention(
            raw=int(self.retention_raw),
            minute=int(self.retention_minute),
            hour=int(self.retention_hour),
        )

    @property
    def store_url(self) -> str:
        return self.database_url or str(self.data_dir / "store")


def check_data_dir(settings: ServerSettings) -> str | None:
    """Create the data directory and the store's; the problem as a message naming the key when
    that is not possible, else None."""
    from hostpulse.store import resolve

    store_key = "database_url" if settings.database_url is not None else "data_dir"
    store_dir = resolve(settings.store_url)[0].parent
    for key, path in (("data_dir", settings.data_dir), (store_key, store_dir)):
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)  # secrets inside
        except OSError as exc:
            return f"HOSTPULSE_{key.upper()} ({key}): cannot create {str(path)!r}: {exc.strerror}"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"HOSTPULSE_{key.upper()} ({key}): {str(path)!r} is not writable"
    return None


def describe_error(exc: ValidationError) -> str:
    """One line per bad key, naming it as the user wrote it (``HOSTPULSE_PORT`` / ``--port``)."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"HOSTPULSE_{key.upper()} ({key}): {err['msg']}")
    return "\n".join(lines)
