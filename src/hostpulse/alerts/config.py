"""alerts.yml: global alert settings, channels, rules and silences.

String values may use ``${VAR}`` and ``${VAR:-default}``; substitution happens after YAML
parsing, on scalars only, so a secret cannot inject YAML structure. Every error names the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from hostpulse.alerts.channels import ChannelConfig
from hostpulse.alerts.exceptions import ConfigError
from hostpulse.alerts.schema import ID_PATTERN, Duration, Rule, SilenceSpec, Strict

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RetrySettings(Strict):
    initial: Duration = 1.0
    max: Duration = 60.0
    attempts: int = Field(default=12, ge=1, le=100)


class NamedSilence(SilenceSpec):
    id: str = Field(pattern=ID_PATTERN)


class AlertsConfig(Strict):
    dedup_window: Duration = 300.0
    repeat_interval: Duration = 4 * 3600.0
    evaluation_interval: Duration = 1.0
    """How often time-driven checks run (stopped reporting, deferred and repeated sends)."""
    create_default_rules: bool = True
    allow_networks: tuple[str, ...] = ()
    """Networks outbound notifications may reach although private (e.g. '10.0.0.0/8')."""
    http_timeout: Duration = 10.0
    retry: RetrySettings = Field(default_factory=RetrySettings)
    channels: tuple[ChannelConfig, ...] = ()
    rules: tuple[Rule, ...] = ()
    silences: tuple[NamedSilence, ...] = ()

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("evaluation_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0.05 <= value <= 60:
            raise ValueError("must be between 50 ms and 60 s")
        return value


def substitute(data: Any, env: Mapping[str, str], path: str = "") -> Any:
    if isinstance(data, dict):
        return {k: substitute(v, env, f"{path}.{k}" if path else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise ConfigError(f"{path}: environment variable {name} is not set")
                return default
            return value

        return _VAR.sub(replace, data)
    return data


def format_errors(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not _is_tag(p))
        loc = re.sub(r"\.(\d+)", r"[\1]", loc)
        lines.append(f"{prefix}{loc}: {err['msg']}")
    return "\n".join(lines)


def _is_tag(part: object) -> bool:
    return isinstance(part, str) and (
        part in {"threshold", "compound", "absent", "forecast"}
        or part in {"email", "slack", "discord", "webhook", "sms", "alertmanager"}
        or part.startswith("function-")
    )


def parse_config(data: Any, env: Mapping[str, str], source: str = "alerts.yml") -> AlertsConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        config = AlertsConfig.model_validate(substitute(data, env))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, f"{source}: ")) from None
    for kind, items in (("channels", config.channels), ("rules", config.rules)):
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ConfigError(f"{source}: {kind}: duplicate id {item.id!r}")
            seen.add(item.id)
    return config


def load_config(path: Path, env: Mapping[str, str]) -> AlertsConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_config(data, env, str(path))
