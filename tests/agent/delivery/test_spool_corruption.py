"""The corruption table: whatever happened to the files, the spool opens, recovers every intact
record, counts what was lost (once) and keeps appending."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool
from hostpulse.agent.delivery.spool import file as sf

N = 200
ACKED = 10  # the first ten were delivered before the damage


def payload(i: int) -> bytes:
    return f"snapshot-{i:05d}|".encode().ljust(200, b"#")


def settings(d: Path) -> SpoolSettings:
    return SpoolSettings(dir=str(d), max_bytes=1024 * 1024, segment_bytes=16 * 1024)


@dataclass
class Layout:
    """Where every record of the filled spool lives: seq -> (segment path, header)."""

    segments: list[Path]
    records: dict[int, tuple[Path, sf.RecordHeader]]

    def seqs_in(self, seg: Path) -> list[int]:
        return [s for s, (p, _h) in self.records.items() if p == seg]


def fill(d: Path) -> Layout:
    with Spool(settings(d)) as spool:
        for i in range(1, N + 1):
            assert spool.append(payload(i)) == i
        spool.ack(r.seq for r in spool.read_batch(ACKED, 1 << 20))
    segs = sorted(d.glob("*.seg"))
    records = {}
    for p in segs:
        base = sf.parse_segment_name(p.name)
        assert base is not None
        for h in sf.scan_segment(p, base).records:
            records[h.seq] = (p, h)
    assert len(records) == N and len(segs) >= 3
    return Layout(segs, records)


def patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def torn_last_record(d: Path, lay: Layout) -> set[int]:
    path, h = lay.records[N]
    with path.open("r+b") as f:
        f.truncate(h.offset + sf.RECORD_HEADER.size + 17)
    return {N}


def bad_checksum(d: Path, lay: Layout) -> set[int]:
    path, h = lay.records[100]
    patch(path, h.offset + sf.RECORD_HEADER.size + 5, b"X")
    return {100}


def bad_length_long(d: Path, lay: Layout) -> set[int]:
    path, h = lay.records[100]
    patch(path, h.offset + 4, struct.pack("<I", 0x7FFF_FFF0))
    return {100}


def bad_length_short(d: Path, lay: Layout) -> set[int]:
    path, h = lay.records[100]
    patch(path, h.offset + 4, struct.pack("<I", 12))
    return {100}


def bad_segment_header(d: Path, lay: Layout) -> set[int]:
    seg = lay.segments[1]
    patch(seg, 0, b"garbage!")
    return set(lay.seqs_in(seg))


def truncated_file(d: Path, lay: Layout) -> set[int]:
    seg = lay.segments[1]
    cut = seg.stat().st_size // 2
    with seg.open("r+b") as f:
        f.truncate(cut)
    return {s for s in lay.seqs_in(seg) if lay.records[s][1].end > cut}


def missing_segment(d: Path, lay: Layout) -> set[int]:
    lay.segments[1].unlink()
    return set(lay.seqs_in(lay.segments[1]))


def missing_last_segment(d: Path, lay: Layout) -> set[int]:
    seg = lay.segments[-1]
    seg.unlink()
    return set(lay.seqs_in(seg))


CASES: dict[str, Callable[[Path, Layout], set[int]]] = {
    "torn last record": torn_last_record,
    "bad checksum": bad_checksum,
    "bad length (too long)": bad_length_long,
    "bad length (too short)": bad_length_short,
    "bad segment header": bad_segment_header,
    "truncated file": truncated_file,
    "missing segment file": missing_segment,
    "missing last segment file": missing_last_segment,
}


def pending_payloads(spool: Spool) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(1000):
        batch = spool.read_batch(64, 1 << 20)
        if not batch:
            return out
        out.extend(r.payload for r in batch)
        spool.ack(r.seq for r in batch)
    raise AssertionError("did not drain")


@pytest.mark.parametrize("damage", CASES.values(), ids=CASES.keys())
def test_damaged_spool_recovers_every_intact_record(
    tmp_path: Path, damage: Callable[[Path, Layout], set[int]]
) -> None:
    lay = fill(tmp_path)
    lost = damage(tmp_path, lay)
    assert lost and not lost & set(range(1, ACKED + 1))
    with Spool(settings(tmp_path)) as spool:
        stats = spool.stats()
        assert stats.counters["lost_corrupt"] == len(lost)
        assert stats.pending_records == N - ACKED - len(lost)
        assert spool.append(b"after the damage") > N  # keeps appending, never reuses a seq
    # a second open finds no new damage and counts nothing twice
    with Spool(settings(tmp_path)) as spool:
        assert spool.stats().counters["lost_corrupt"] == len(lost)
        got = pending_payloads(spool)
    intact = [payload(i) for i in range(ACKED + 1, N + 1) if i not in lost]
    assert got == [*intact, b"after the damage"]


def test_missing_state_file_resends_everything_on_disk(tmp_path: Path) -> None:
    fill(tmp_path)
    (tmp_path / "state.json").unlink()
    with Spool(settings(tmp_path)) as spool:
        assert spool.stats().counters.get("lost_corrupt", 0) == 0
        spool.append(b"new")
        got = pending_payloads(spool)
    # the delivered ones come again (the server de-duplicates); nothing is missing
    assert got == [*(payload(i) for i in range(1, N + 1)), b"new"]


def test_unreadable_state_file_is_treated_as_missing(tmp_path: Path) -> None:
    fill(tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with Spool(settings(tmp_path)) as spool:
        assert len(pending_payloads(spool)) == N


def test_missing_directory_starts_empty_and_appends(tmp_path: Path) -> None:
    fill(tmp_path / "spool")
    shutil.rmtree(tmp_path / "spool")
    with Spool(settings(tmp_path / "spool")) as spool:
        assert spool.stats().pending_records == 0
        spool.append(b"first")
    with Spool(settings(tmp_path / "spool")) as spool:
        assert pending_payloads(spool) == [b"first"]


def test_a_file_truncated_to_nothing_loses_only_its_records(tmp_path: Path) -> None:
    lay = fill(tmp_path)
    seg = lay.segments[1]
    seg.write_bytes(b"")
    lost = set(lay.seqs_in(seg))
    with Spool(settings(tmp_path)) as spool:
        assert spool.stats().counters["lost_corrupt"] == len(lost)
        assert len(pending_payloads(spool)) == N - ACKED - len(lost)
