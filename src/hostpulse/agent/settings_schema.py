"""Validate a nested mapping against frozen dataclasses; every error names its dotted key.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``, ``X | None``,
``dict[str, str]`` and nested dataclasses. Strings are converted to numbers and booleans (they
come from environment variables and ``${VAR}`` substitution); a float also takes a duration
("500ms", "5s", "2m", "1h" -> seconds). Field metadata ``min`` / ``max`` bound numbers.
"""

from __future__ import annotations

import re
import types
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^([0-9.eE+-]+)\s*(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is one line: ``<key>: <problem>``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def validate(cls: type[T], data: Any, key: str = "") -> T:
    if not isinstance(data, dict):
        raise ConfigError(key or "<root>", f"expected a mapping of keys, got {_show(data)}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for name in data:
        if name not in names:
            where = f"{key}.{name}" if key else str(name)
            raise ConfigError(where, f"unknown key (known: {', '.join(sorted(names))})")
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        where = f"{key}.{f.name}" if key else f.name
        value = _convert(hints[f.name], data[f.name], where)
        if isinstance(value, int | float) and not isinstance(value, bool):
            low, high = f.metadata.get("min"), f.metadata.get("max")
            if low is not None and value < low:
                raise ConfigError(where, f"must be at least {low}, got {value}")
            if high is not None and value > high:
                raise ConfigError(where, f"must be at most {high}, got {value}")
        values[f.name] = value
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{key}.{f.name}" if key else f.name, "is required")
    return cls(**values)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key)
    if is_dataclass(tp):
        return validate(tp, {} if value is None else value, key)  # type: ignore[arg-type]
    if origin is Literal:
        choices = get_args(tp)
        text = str(value).lower() if isinstance(value, str) else value
        if text not in choices:
            raise ConfigError(
                key, f"expected one of {', '.join(map(str, choices))}, got {_show(value)}"
            )
        return text
    if origin is dict:
        return labels_from_text(value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(key, f"expected true or false, got {_show(value)}")
    if tp is int or tp is float:
        return _number(tp, value, key)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(key, f"expected a string, got {_show(value)}")
    raise TypeError(f"unsupported settings type {tp!r} for {key}")  # a programming error


def _number(tp: type, value: Any, key: str) -> int | float:
    what = "an integer" if tp is int else "a number"
    if isinstance(value, bool):
        raise ConfigError(key, f"expected {what}, got {_show(value)}")
    if isinstance(value, str):
        text = value.strip()
        scale = 1.0
        if tp is float:  # a duration: "5s", "500ms", "2m", "1h" (seconds)
            match = _DURATION.match(text)
            if match:
                text, scale = match.group(1), _UNITS[match.group(2)]
        try:
            value = float(text) * scale if tp is float else int(text)
        except ValueError:
            raise ConfigError(key, f"expected {what}, got {_show(value)}") from None
    if tp is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if tp is int and isinstance(value, int):
        return value
    if tp is float and isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(key, f"expected a finite number, got {value}")
        return float(value)
    raise ConfigError(key, f"expected {what}, got {_show(value)}")


def labels_from_text(value: Any, key: str) -> dict[str, str]:
    """A mapping of label name -> value, or ``"env=prod,role=db"`` from an environment variable."""
    if isinstance(value, str):
        pairs: dict[str, Any] = {}
        for item in filter(None, (p.strip() for p in value.split(","))):
            name, sep, text = item.partition("=")
            if not sep:
                raise ConfigError(key, f"expected name=value pairs, got {item!r}")
            pairs[name.strip()] = text.strip()
        value = pairs
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping of name: value, got {_show(value)}")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name):
            raise ConfigError(f"{key}.{name}", "label names are letters, digits and _")
        if isinstance(text, dict | list) or text is None:
            raise ConfigError(f"{key}.{name}", f"expected a string, got {_show(text)}")
        out[name] = str(text).lower() if isinstance(text, bool) else str(text)
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)
