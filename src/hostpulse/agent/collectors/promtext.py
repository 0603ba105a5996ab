"""One sample line of the Prometheus text format (version 0.0.4), as textfile-collector files
and exec plugins write them: ``name{label="value",...} value [timestamp]``.

Not prometheus_client's parser: importing it imports the whole of prometheus_client (its HTTP
servers, ``urllib.request``, ``ssl``, ``email``), 8 MB of the agent's memory for reading a
few lines a minute. Comment lines (``# HELP``, ``# TYPE``) are the caller's to skip.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*\"")
_SPACE = re.compile(r"[ \t]+")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_NON_FINITE = {"nan": "nan", "+inf": "inf", "inf": "inf", "-inf": "-inf"}


def parse_sample(line: str) -> tuple[str, dict[str, str], float]:
    """(name, labels, value) of one sample line; ValueError saying what is wrong. The
    timestamp, if any, is checked and dropped (the agent stamps its own snapshots)."""
    text = line.strip()
    match = _NAME.match(text)
    if match is None:
        raise ValueError("no metric name at the start")
    name = match.group(0)
    pos = match.end()
    labels: dict[str, str] = {}
    rest = text[pos:]
    if rest.startswith("{"):
        labels, pos = _labels(text, pos + 1)
        rest = text[pos:]  # the value may follow the } directly
    elif not rest or rest[0] not in " \t":
        raise ValueError("expected a space and a value after the name")
    if not rest.strip():
        raise ValueError("no value")
    fields = _SPACE.split(rest.strip())
    if len(fields) > 2:
        raise ValueError("unexpected text after the value and timestamp")
    value = _value(fields[0])
    if len(fields) == 2 and not re.fullmatch(r"-?[0-9]+", fields[1]):
        raise ValueError(f"the timestamp {fields[1][:40]!r} is not an integer")
    return name, labels, value


def _labels(text: str, pos: int) -> tuple[dict[str, str], int]:
    """The labels from just after ``{``; the position after the closing ``}``."""
    labels: dict[str, str] = {}
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        match = _LABEL.match(text, pos)
        if match is None:
            raise ValueError('expected name="value" in the labels')
        label = match.group(1)
        if label in labels:
            raise ValueError(f"label {label!r} given twice")
        value, pos = _quoted(text, match.end())
        labels[label] = value
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "}":
            raise ValueError("expected , or } after a label")


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """A label value from just after its opening quote; the position after the closing one."""
    out: list[str] = []
    while pos < len(text):
        c = text[pos]
        if c == '"':
            return "".join(out), pos + 1
        if c == "\\":
            escaped = _ESCAPES.get(text[pos + 1 : pos + 2])
            if escaped is None:
                raise ValueError('a label value has an unknown escape (only \\\\, \\" and \\n)')
            out.append(escaped)
            pos += 2
            continue
        out.append(c)
        pos += 1
    raise ValueError("a label value has no closing quote")


def _value(text: str) -> float:
    special = _NON_FINITE.get(text.lower())
    if special is not None:
        return float(special)
    if "_" in text or text.lower().lstrip("+-").startswith(("inf", "nan")):
        raise ValueError(f"the value {text[:40]!r} is not a number")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"the value {text[:40]!r} is not a number") from None
