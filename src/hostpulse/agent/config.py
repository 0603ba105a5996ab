"""AgentSettings: the one place the agent reads its YAML file, environment and flags.

Precedence: flags > ``HOSTPULSE_*`` environment variables > the YAML file > defaults.

* The file (``--config`` or ``HOSTPULSE_CONFIG``) may use ``${VAR}`` and ``${VAR:-default}`` in
  any string value; ``$$`` is a literal ``$``. An unset variable without a default is an error.
* Environment variables name a key with ``HOSTPULSE_`` and ``__`` between nested sections:
  ``HOSTPULSE_INTERVAL=1``, ``HOSTPULSE_LOG__LEVEL=debug``, ``HOSTPULSE_INTERVALS__DISK_USAGE=60``,
  ``HOSTPULSE_LABELS=env=prod,role=db``. Unknown ``HOSTPULSE_*`` variables are ignored (the
  server shares the prefix); unknown keys in the file are errors.
* Every problem raises :class:`ConfigError` whose message is one line naming the key.

The settings are plain frozen dataclasses validated by :mod:`hostpulse.agent.settings_schema`
rather than pydantic: pydantic alone adds about 17 MB to the agent's resident memory, more than
half of its 25 MB budget (see docs/benchmarks.md). To add a section, declare a dataclass with
defaults and add a field for it to :class:`AgentSettings`; the loader, env mapping and errors
follow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.settings_schema import ConfigError, labels_from_text, validate

__all__ = [
    "AgentSettings",
    "ConfigError",
    "ContainerSettings",
    "CustomSettings",
    "ExporterSettings",
    "IntervalSettings",
    "LogSettings",
    "load_settings",
]

ENV_PREFIX = "HOSTPULSE_"
MIN_INTERVAL = 1.0

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


@dataclass(frozen=True, slots=True)
class IntervalSettings:
    """Per-collector intervals in seconds; ``None`` means the agent's ``interval``."""

    cpu: float | None = field(default=None, metadata={"min": MIN_INTERVAL})
    memory: float | None = field(default=None, metadata={"min": MIN_INTERVAL})
    disk_usage: float | None = field(default=30.0, metadata={"min": MIN_INTERVAL})
    disk_io: float | None = field(default=None, metadata={"min": MIN_INTERVAL})
    network: float | None = field(default=None, metadata={"min": MIN_INTERVAL})
    connections: float | None = field(default=15.0, metadata={"min": MIN_INTERVAL})
    processes: float | None = field(default=15.0, metadata={"min": MIN_INTERVAL})
    system: float | None = field(default=60.0, metadata={"min": MIN_INTERVAL})
    containers: float | None = field(default=None, metadata={"min": MIN_INTERVAL})
    sensors: float | None = field(default=15.0, metadata={"min": MIN_INTERVAL})
    gpu: float | None = field(default=None, metadata={"min": MIN_INTERVAL})


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    listen: str | None = None
    """``host:port`` for the Prometheus ``/metrics`` endpoint (``:9100`` = all interfaces)."""


@dataclass(frozen=True, slots=True)
class ContainerSettings:
    """``containers:``: per-container metrics from cgroups (Linux)."""

    enabled: bool = True
    cgroup_root: str = "/sys/fs/cgroup"
    sockets: str = "/var/run/docker.sock,/run/podman/podman.sock"
    """Docker/Podman API sockets asked for names and images (comma-separated; missing ones
    are skipped)."""
    systemd_services: bool = False
    """Also report every ``system.slice/<unit>.service`` as a container (runtime systemd)."""
    max_containers: int = field(default=100, metadata={"min": 1, "max": 1000})
    """At most this many containers per collection (engine containers first)."""

    def socket_paths(self) -> list[str]:
        return [s.strip() for s in self.sockets.split(",") if s.strip()]


@dataclass(frozen=True, slots=True)
class CustomSettings:
    """``custom:``: your own metrics, as series ``custom:<name>`` (see collectors/custom.py)."""

    textfile_dir: str | None = None
    """Read every ``*.prom`` file here (node_exporter's textfile-collector format)."""
    plugins: dict[str, str] = field(default_factory=dict)
    """name -> command printing Prometheus text (run without a shell)."""
    plugin_interval: float = field(default=60.0, metadata={"min": 1.0})
    plugin_timeout: float = field(default=10.0, metadata={"min": 0.1, "max": 300.0})
    max_series: int = field(default=1000, metadata={"min": 1, "max": 10_000})
    max_labels: int = field(default=16, metadata={"min": 0, "max": 64})


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: LogLevel = "info"
    file: str | None = None
    """Also log to this file, rotated at ``max_bytes`` keeping ``backup_count`` old files."""
    max_bytes: int = field(default=10_000_000, metadata={"min": 1024})
    backup_count: int = field(default=5, metadata={"min": 0})


@dataclass(frozen=True, slots=True)
class AgentSettings:
    interval: float = field(default=5.0, metadata={"min": MIN_INTERVAL})
    intervals: IntervalSettings = field(default_factory=IntervalSettings)
    top_n: int = field(default=10, metadata={"min": 1, "max": 1000})
    process_cmdline: Literal["full", "redacted", "off"] = "redacted"
    """What the top-process lists carry of each command line: ``redacted`` masks the values of
    secret-looking arguments (``--db-password=***``, URL passwords, ``*_TOKEN=***``)."""
    host_id: str | None = None
    host_root: str | None = None
    """Where the host's ``/`` is mounted when the agent runs in a container (``--host-root
    /host``): the host's /proc and /sys are read at ``<host_root>/proc`` and ``<host_root>/sys``
    (psutil's ``PROCFS_PATH`` too), its filesystems are those of ``<host_root>/proc/1/mountinfo``
    measured under ``<host_root>`` and reported under their own mount points, and the host id
    is read from ``<host_root>/etc/machine-id``. None: the agent's own view (``/``)."""
    enroll_token: str | None = None
    """``HOSTPULSE_ENROLL_TOKEN``: an enrollment token exchanged for this host's key when no
    key is saved yet (unlike ``--enroll``, it does not show in the process list)."""
    labels: dict[str, str] = field(default_factory=dict)
    exporter: ExporterSettings = field(default_factory=ExporterSettings)
    containers: ContainerSettings = field(default_factory=ContainerSettings)
    custom: CustomSettings = field(default_factory=CustomSettings)
    log: LogSettings = field(default_factory=LogSettings)
    shipper: ShipperSettings = field(default_factory=ShipperSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)

    def rootfs(self) -> str:
        """The directory holding the host's ``/`` (``/`` itself unless ``host_root``)."""
        return self.host_root.rstrip("/") or "/" if self.host_root else "/"

    def proc_root(self) -> str:
        return f"{self.host_root.rstrip('/')}/proc" if self.host_root else "/proc"

    def sys_root(self) -> str:
        return f"{self.host_root.rstrip('/')}/sys" if self.host_root else "/sys"

    def interval_of(self, collector: str) -> float:
        """The effective interval of a collector: its own, never below the agent's."""
        own: float | None = getattr(self.intervals, collector, None)
        return max(own, self.interval) if own is not None else self.interval


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9100"``, ``"[::1]:9100"``, ``":9100"`` -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: str, env: Mapping[str, str], key: str) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}``; ConfigError names ``key`` for an unset VAR."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(key, f"environment variable {name} is not set")

    return _VAR.sub(repl, value)


def _substitute_tree(node: Any, env: Mapping[str, str], key: str) -> Any:
    if isinstance(node, str):
        return substitute(node, env, key)
    if isinstance(node, dict):
        return {
            k: _substitute_tree(v, env, f"{key}.{k}" if key else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute_tree(v, env, f"{key}[{i}]") for i, v in enumerate(node)]
    return node


def read_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    import yaml  # only when a file is given

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "the config file is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "not valid YAML").split())
        raise ConfigError(str(path), f"invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the file must hold a mapping of keys (interval: 5, ...)")
    result: dict[str, Any] = _substitute_tree(data, env, "")
    return result


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _known_keys(cls: type, prefix: str = "") -> dict[str, bool]:
    """Dotted key -> whether it is a section, for mapping environment variable names."""
    from dataclasses import fields, is_dataclass
    from typing import get_type_hints

    keys: dict[str, bool] = {}
    hints = get_type_hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        dotted = prefix + f.name
        if is_dataclass(tp):
            keys[dotted] = True
            keys.update(_known_keys(tp, dotted + "."))  # type: ignore[arg-type]
        else:
            keys[dotted] = False
    return keys


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    known = _known_keys(AgentSettings)
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if known.get(dotted) is False:
            _set(tree, dotted, value)
    return tree


def check_ca_file(path: str) -> None:
    """ConfigError naming ``shipper.ca_file`` unless it holds PEM certificates."""
    import ssl

    from hostpulse.agent.delivery.transport import tls_context

    try:
        tls_context(path)
    except FileNotFoundError:
        raise ConfigError("shipper.ca_file", f"{path!r} does not exist") from None
    except ssl.SSLError:  # (an OSError too)
        raise ConfigError(
            "shipper.ca_file", f"{path!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    except OSError as exc:
        raise ConfigError("shipper.ca_file", f"cannot read {path!r}: {exc.strerror}") from None


def _join_server_list(tree: dict[str, Any]) -> None:
    """``shipper.server`` as a YAML list of URLs -> the comma-separated form."""
    shipper = tree.get("shipper")
    if not isinstance(shipper, dict) or not isinstance(shipper.get("server"), list):
        return
    urls = shipper["server"]
    for i, url in enumerate(urls):
        if not isinstance(url, str) or "," in url:
            raise ConfigError(f"shipper.server[{i}]", f"expected a URL, got {url!r}")
    shipper["server"] = ",".join(urls)


def load_settings(
    config_file: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AgentSettings:
    """Defaults < file < environment < ``overrides`` (dotted keys from flags; None = not given)."""
    env = os.environ if env is None else env
    if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(env[ENV_PREFIX + "CONFIG"])
    tree = read_file(config_file, env) if config_file is not None else {}
    flags: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set(flags, dotted, value)
    for layer in (from_env(env), flags):
        if isinstance(layer.get("labels"), str):  # "env=prod,role=db": merged name by name
            layer["labels"] = labels_from_text(layer["labels"], "labels")
        tree = _merge(tree, layer)
    _join_server_list(tree)
    settings = validate(AgentSettings, tree)
    if settings.shipper.server is not None:
        from hostpulse.agent.delivery.transport import ingest_url

        urls = settings.shipper.server_urls()
        if not urls:
            raise ConfigError("shipper.server", "no server URL given")
        for url in urls:
            try:
                ingest_url(url)
            except ValueError as exc:
                raise ConfigError("shipper.server", str(exc)) from None
    if settings.shipper.ca_file is not None:
        check_ca_file(settings.shipper.ca_file)
    if settings.host_root is not None and not Path(settings.host_root).is_absolute():
        raise ConfigError("host_root", f"expected an absolute path, got {settings.host_root!r}")
    if settings.exporter.listen is not None:
        try:
            parse_listen(settings.exporter.listen)
        except ValueError as exc:
            raise ConfigError("exporter.listen", str(exc)) from None
    return settings
