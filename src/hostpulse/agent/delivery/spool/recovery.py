"""Opening a spool directory after a clean stop, a crash or damage.

Every segment is checked record by record. What is lost is counted once, in
``state.counters["lost_corrupt"]`` (records) and ``["corrupt_bytes"]``:

- a gap in the sequence numbers between intact records (a damaged record, a bad length that
  hid the records behind it until the next intact one, a truncated or missing segment);
- the end: records the state file knows were appended (``last_seq``) but that are not on disk
  any more, or, without that knowledge, one record for a torn tail.

Sequences at or below the cursor were delivered and are never counted as lost; sequences at or
below ``checked`` were accounted for by an earlier recovery. Damaged segments are rewritten with
their intact records only, so the same damage is not found (and counted) again; segments with
nothing pending are deleted after the state is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hostpulse.agent.delivery.spool import file as sf
from hostpulse.agent.delivery.spool.state import SpoolState, load_state, write_state

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RecoveredSegment:
    base: int
    path: Path
    size: int
    records: list[sf.RecordHeader]


@dataclass(slots=True)
class Recovered:
    state: SpoolState
    segments: list[RecoveredSegment]
    pending: int
    lost: int
    damaged_bytes: int


def _missing(lo: int, hi: int, floor: int, acked: set[int]) -> int:
    """How many sequences strictly between lo and hi, above floor, were not delivered."""
    start = max(lo, floor)
    if hi - 1 <= start:
        return 0
    return hi - 1 - start - sum(1 for a in acked if start < a < hi)


def recover(directory: Path) -> Recovered:
    directory.mkdir(parents=True, exist_ok=True)
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
    loaded = load_state(directory)
    state = loaded if loaded is not None else SpoolState()
    floor = max(state.cursor, state.checked)
    acked = {a for a in state.acked_ahead if a > state.cursor}

    named = sorted(
        (base, p)
        for p in directory.iterdir()
        if (base := sf.parse_segment_name(p.name)) is not None and p.is_file()
    )
    scans = [(p, sf.scan_segment(p, base)) for base, p in named]

    lost = damaged = 0
    prev: int | None = state.cursor if loaded is not None else None
    for _path, res in scans:
        damaged += res.damaged_bytes
        for rec in res.records:
            if prev is not None:
                lost += _missing(prev, rec.seq, floor, acked)
            prev = rec.seq
    last_good = max((r.seq for _p, res in scans for r in res.records), default=0)
    torn_tail = bool(scans) and scans[-1][1].trailing_damage
    tail_end = max(state.last_seq, last_good + (1 if torn_tail else 0))
    lost += _missing(max(last_good, state.cursor), tail_end + 1, floor, acked)

    kept: list[RecoveredSegment] = []
    doomed: list[Path] = []
    for path, res in scans:
        if not any(r.seq > state.cursor for r in res.records):
            doomed.append(path)
            continue
        if res.damaged_bytes:
            logger.warning(
                "spool segment %s: %d damaged bytes in %d regions; keeping %d intact records",
                path.name,
                res.damaged_bytes,
                res.damaged_regions,
                len(res.records),
            )
            sf.rewrite_segment(path, res.base, res.records)
            res = sf.scan_segment(path, res.base)
        kept.append(RecoveredSegment(res.base, path, res.size, res.records))

    if lost or damaged:
        logger.warning("spool recovery: %d records lost, %d damaged bytes skipped", lost, damaged)
        state.counters["lost_corrupt"] = state.counters.get("lost_corrupt", 0) + lost
        state.counters["corrupt_bytes"] = state.counters.get("corrupt_bytes", 0) + damaged
    top = max(last_good, state.last_seq, state.cursor, state.checked)
    state.checked = state.last_seq = top
    state.acked_ahead = acked
    write_state(directory, state)
    for path in doomed:
        path.unlink(missing_ok=True)
    pending = sum(
        1 for seg in kept for r in seg.records if r.seq > state.cursor and r.seq not in acked
    )
    return Recovered(state, kept, pending, lost, damaged)
