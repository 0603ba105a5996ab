"""``state.json``: which spooled records are gone, and the spool's persistent counters.

Written to a temporary file, fsync'd and renamed over the old one, so it is always either the
old or the new version. A missing or unreadable state file is not fatal: every record on disk
is then treated as pending (resent; the server de-duplicates) and the counters restart.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
VERSION = 1


@dataclass(slots=True)
class SpoolState:
    cursor: int = 0
    """Every sequence at or below it is gone (delivered, refused, dropped or lost)."""
    checked: int = 0
    """Highest sequence whose loss has been accounted for (and highest ever appended)."""
    last_seq: int = 0
    """Highest sequence appended when the state was last written."""
    acked_ahead: set[int] = field(default_factory=set)
    """Sequences above the cursor that are gone too (sent out of order with a backlog)."""
    counters: dict[str, int] = field(default_factory=dict)


def load_state(directory: Path) -> SpoolState | None:
    path = directory / STATE_FILE
    try:
        raw = json.loads(path.read_bytes())
        if raw.get("version") != VERSION:
            raise ValueError(f"unknown version {raw.get('version')!r}")
        return SpoolState(
            cursor=int(raw["cursor"]),
            checked=int(raw["checked"]),
            last_seq=int(raw["last_seq"]),
            acked_ahead={int(s) for s in raw["acked_ahead"]},
            counters={str(k): int(v) for k, v in raw["counters"].items()},
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning(
            "spool state %s is unreadable (%s); every spooled record is resent", path, exc
        )
        return None


def write_state(directory: Path, state: SpoolState) -> int:
    """Replace the state file atomically; its size in bytes."""
    data = json.dumps(
        {
            "version": VERSION,
            "cursor": state.cursor,
            "checked": state.checked,
            "last_seq": state.last_seq,
            "acked_ahead": sorted(state.acked_ahead),
            "counters": state.counters,
        },
        separators=(",", ":"),
    ).encode()
    tmp = directory / (STATE_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(directory / STATE_FILE)
    return len(data)
