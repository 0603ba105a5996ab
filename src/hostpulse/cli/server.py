"""`hostpulse server`: the ingest and query API on the embedded store."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from hostpulse.server.config import (
    ServerSettings,
    check_data_dir,
    check_database,
    check_redis,
    describe_error,
)

if TYPE_CHECKING:
    from hostpulse.server.datalock import DataDirLock

HostOpt = Annotated[str | None, typer.Option("--host", help="Listen address [127.0.0.1].")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Listen port [8400].")]
DataOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory [~/.local/share/hostpulse].")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="postgresql://user@host:5432/dbname: users, keys, tokens and alerts in PostgreSQL "
        "(samples stay under --data-dir); or a path / sqlite+aiosqlite:/// URL for the embedded "
        "store. Also HOSTPULSE_DATABASE_URL.",
    ),
]
TsdbOpt = Annotated[
    str | None,
    typer.Option(
        "--tsdb-url",
        help="Keep samples in a Prometheus-compatible TSDB: http://vm:8428 (VictoriaMetrics), "
        "http://vminsert:8480/insert/0/prometheus (cluster, with --tsdb-query-url), "
        "http://prometheus:9090 (--web.enable-remote-write-receiver). Also HOSTPULSE_TSDB_URL; "
        "docs/tsdb.md.",
    ),
]
TsdbQueryOpt = Annotated[
    str | None,
    typer.Option(
        "--tsdb-query-url",
        help="Where the TSDB answers queries, default --tsdb-url "
        "(cluster: http://vmselect:8481/select/0/prometheus). Also HOSTPULSE_TSDB_QUERY_URL.",
    ),
]
RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="redis://host:6379/0: share live fan-out, rate limits, revocations and alert "
        "ownership with the other replicas (docs/scale-out-redis.md). Also HOSTPULSE_REDIS_URL.",
    ),
]
RawOpt = Annotated[str | None, typer.Option("--retention-raw", help="Raw samples [7d].")]
MinOpt = Annotated[str | None, typer.Option("--retention-minute", help="1-minute rollups [30d].")]
HourOpt = Annotated[str | None, typer.Option("--retention-hour", help="1-hour rollups [365d].")]
AlertsOpt = Annotated[
    Path | None,
    typer.Option("--alerts-config", help="alerts.yml with rules and channels (config/alerts.yml)."),
]
TlsCertOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert", help="Serve HTTPS with this PEM certificate (chain); needs --tls-key."
    ),
]
TlsKeyOpt = Annotated[
    Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert (unencrypted).")
]
CorsOpt = Annotated[
    str | None,
    typer.Option(
        "--cors-origins",
        help="Browser origins allowed to call the API, comma-separated "
        "(https://ops.example.com); default none.",
    ),
]
ProxiesOpt = Annotated[
    str | None,
    typer.Option(
        "--trusted-proxies",
        help="Reverse proxies whose X-Forwarded-For is believed, comma-separated addresses or "
        "networks (127.0.0.1,10.0.0.0/24); default none.",
    ),
]
LogOpt = Annotated[
    str | None, typer.Option("--log-level", help="debug, info, warning, error \\[info].")
]
AdminPasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--admin-password",
        help="Password of the first admin (first start only; at least 12 characters). "
        "Default: a random one, printed once. Also HOSTPULSE_ADMIN_PASSWORD.",
        show_default=False,
    ),
]
MetricsTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--metrics-token",
        help="Bearer token that may read GET /metrics (give Prometheus this one; at least 16 "
        "characters). Better in HOSTPULSE_METRICS_TOKEN: a flag shows in ps.",
        show_default=False,
    ),
]


def load_settings(*, probe_redis: bool = True, **overrides: Any) -> ServerSettings:
    """Environment (HOSTPULSE_*) with flags on top; exit 2 naming the key when invalid,
    including a bad alerts.yml (checked here so that the server never starts with it).
    ``probe_redis=False``: a command that works without Redis (``hostpulse user ...``)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = ServerSettings(**given)
    except ValidationError as exc:
        typer.echo(f"invalid server settings:\n{describe_error(exc)}", err=True)
        raise typer.Exit(2) from None
    redis_problem = check_redis(settings) if probe_redis else None
    problem = check_data_dir(settings) or check_database(settings) or redis_problem
    if problem is not None:
        typer.echo(f"invalid server settings:\n{problem}", err=True)
        raise typer.Exit(2)
    if settings.alerts_config is not None:
        from hostpulse.alerts.config import load_config
        from hostpulse.alerts.exceptions import ConfigError

        try:
            load_config(settings.alerts_config, os.environ)
        except ConfigError as exc:
            typer.echo(f"invalid alerts configuration: {exc}", err=True)
            raise typer.Exit(2) from None
    return settings


_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class _Formatter(logging.Formatter):
    """The message, then the ``extra`` fields of hostpulse's own records (which channel, which
    rule, the error) as ``key=value``: without them "notification not delivered" says nothing."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if not record.name.startswith("hostpulse"):
            return text
        extra = [f"{k}={v!r}" for k, v in vars(record).items() if k not in _RECORD_FIELDS]
        return " ".join([text, *extra])


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # httpx logs every request's full URL at INFO, and the URL of a Slack or Discord webhook
    # (or a webhook with a token in its query) is a secret: the alerts record sends themselves
    logging.getLogger("httpx").setLevel(logging.WARNING)


def start_settings(flags: dict[str, Any]) -> ServerSettings:
    """Settings for a command that runs the server, from its flags (its parameters, named as
    the ``ServerSettings`` fields, None where not given: pass ``locals()`` first thing), with
    logging set up."""
    settings = load_settings(**flags)
    setup_logging(settings.log_level)
    return settings


def server(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
    tsdb_url: TsdbOpt = None,
    tsdb_query_url: TsdbQueryOpt = None,
    redis_url: RedisOpt = None,
    retention_raw: RawOpt = None,
    retention_minute: MinOpt = None,
    retention_hour: HourOpt = None,
    alerts_config: AlertsOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    cors_origins: CorsOpt = None,
    log_level: LogOpt = None,
    admin_password: AdminPasswordOpt = None,
    trusted_proxies: ProxiesOpt = None,
    metrics_token: MetricsTokenOpt = None,
) -> None:
    """Run the hostpulse server (API docs at /docs). The first start creates the user admin
    and prints its password once (or takes --admin-password)."""
    settings = start_settings(locals())
    from hostpulse.server.run import ListenError, serve

    async def announce(url: str) -> None:
        typer.echo(f"hostpulse server listening on {url} (API docs: {url}/docs)")

    lock = lock_data_dir(settings)
    try:
        serve(settings, on_started=announce)
    except ListenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        lock.release()


def lock_data_dir(settings: ServerSettings) -> DataDirLock:
    """The data directory (and the embedded store's, when elsewhere) for this process alone
    until ``release``; another server on it: the directory and its pid printed, exit 2."""
    from hostpulse.server.datalock import DataDirInUse, DataDirLock
    from hostpulse.store import resolve

    data_dir = settings.data_dir.resolve()
    store_dir = resolve(settings.store_url)[1].parent.resolve()
    inside = store_dir == data_dir or data_dir in store_dir.parents
    try:
        return DataDirLock([data_dir] if inside else [data_dir, store_dir]).acquire()
    except DataDirInUse as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
