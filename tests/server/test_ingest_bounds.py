"""The bounds of one ingest request (issue 13 items 1, 3, 9, 12): every count, size, string and
float a client controls is checked before the store sees it, answered 413/422/403 naming the
field or setting, and nothing of a refused request is stored. Through ``IngestService`` on a
real store; the HTTP mapping of ``IngestError`` is tested in test_ingest_api.py."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import batch, now_ms, request

from hostpulse.protocol import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    HostBatch,
    IngestRequest,
    Label,
    Process,
    codec,
)
from hostpulse.server.ingest import IngestError, IngestLimits, IngestService
from hostpulse.store import open_store
from hostpulse.store.base import Store
from hostpulse.store.types import Tier

PB = PROTOBUF_CONTENT_TYPE
CPU = ("cpu_busy_percent", ())
LIMITS = IngestLimits(max_hosts=5, max_head_cells=2000, max_processes=20)


class Service:
    """A real store and an IngestService on their own event loop."""

    def __init__(self, tmp: Path, limits: IngestLimits = LIMITS) -> None:
        self.loop = asyncio.new_event_loop()
        self.store: Store = open_store(str(tmp / "store"))
        self.loop.run_until_complete(self.store.start())
        self.service = IngestService(self.store, limits, lambda: now_ms() / 1000)

    def post(self, req: IngestRequest | bytes, ctype: str = PB, enc: str | None = None) -> int:
        body = req if isinstance(req, bytes) else codec.encode(req, encoding="identity")
        self.loop.run_until_complete(self.service.ingest_body(body, ctype, enc))
        return 200

    def refused(self, req: IngestRequest | bytes, ctype: str = PB, enc: str | None = None) -> str:
        """The status and reason of a refused request; asserts nothing new was stored."""
        before = self.loop.run_until_complete(self.store.stats())
        with pytest.raises(IngestError) as info:
            self.post(req, ctype, enc)
        assert self.loop.run_until_complete(self.store.stats()) == before
        return f"{info.value.status} {info.value.reason}"

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    s = Service(tmp_path)
    try:
        yield s
    finally:
        s.close()


def one(host: str = "h", ts: int | None = None) -> HostBatch:
    return batch(host, [(ts or now_ms() - 1000, {CPU: 42.0})])


def test_far_past_timestamps_are_refused_naming_the_field(svc: Service) -> None:
    # item 1: ts = 1e12 + i * 600000 opened one head window each; now older than max_past
    # (default: the raw retention, 7 d) is a 422
    far = batch("h", [(1_000_000_000_000 + i * 600_000, {CPU: 1.0}) for i in range(3)])
    reason = svc.refused(request(far))
    assert reason.startswith("422") and "timestamp_ms" in reason and "max_past" in reason
    week = now_ms() - 7 * 86_400_000
    assert "max_past" in svc.refused(request(one(ts=week - 60_000)))
    assert svc.post(request(one(ts=week + 60_000))) == 200
    assert "future" in svc.refused(request(one(ts=now_ms() + 3_600_000)))


def test_many_windows_times_series_are_refused(svc: Service) -> None:
    # item 1: memory per request: every distinct timestamp adds a row of the host's series to
    # the head, however few values it carries: timestamps x series <= max_head_cells
    t = now_ms() - 6 * 86_400_000
    values = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.0 for c in range(200)}
    sparse = batch("h", [(t + i * 600_000, values) for i in range(11)])  # 11 x 200 > 2000
    reason = svc.refused(request(sparse))
    assert reason.startswith("413") and "max_head_cells" in reason
    first = next(iter(values))
    thin = batch("h", [(t, values)] + [(t + i * 100, {first: 1.0}) for i in range(1, 11)])
    assert "max_head_cells" in svc.refused(request(thin))  # 11 rows of 200, 210 values
    assert svc.post(request(batch("h", [(t + i * 5000, values) for i in range(10)]))) == 200


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_boot_time_and_process_percentages_are_422(svc: Service, value: float) -> None:
    # item 12: boot_time = NaN was a 500 (the database refused it)
    b = one()
    b.host.boot_time = value
    assert svc.refused(request(b)).startswith("422") and "boot_time" in svc.refused(request(b))
    p = one()
    p.snapshots[0].top_cpu.append(Process(pid=1, name="x", cpu_percent=value))
    assert "finite" in svc.refused(request(p))


def _huge_hostname() -> HostBatch:
    b = one()
    b.host.hostname = "x" * 300
    return b


def _many_labels() -> HostBatch:
    b = one()
    b.host.labels.extend(Label(name=f"l{i}", value="v") for i in range(65))
    return b


def _long_label() -> HostBatch:
    b = one()
    b.host.labels.append(Label(name="env", value="v" * 1025))
    return b


def _many_processes() -> HostBatch:
    b = one()
    b.snapshots[0].top_memory.extend(Process(pid=i, name="p") for i in range(21))
    return b


def _long_cmdline() -> HostBatch:
    b = one()
    b.snapshots[0].top_cpu.append(Process(pid=1, name="p", cmdline="a" * 5000))
    return b


def _long_kernel() -> HostBatch:
    b = one()
    b.host.kernel = "k" * 257
    return b


def _many_unsupported() -> HostBatch:
    b = one()
    b.unsupported.extend(f"m{i}" for i in range(1001))
    return b


METADATA = {
    "hostname": (_huge_hostname, "hostname"),
    "host labels": (_many_labels, "max_host_labels"),
    "label value": (_long_label, "label 'env'"),
    "process list": (_many_processes, "max_processes"),
    "cmdline": (_long_cmdline, "cmdline"),
    "kernel": (_long_kernel, "kernel"),
    "unsupported list": (_many_unsupported, "unsupported"),
}


@pytest.mark.parametrize("case", list(METADATA))
def test_metadata_is_bounded(svc: Service, case: str) -> None:
    # item 9: a 30 MB hostname, 200,000 labels, 30,000-process lists were stored and served
    make, named = METADATA[case]
    reason = svc.refused(request(make()))
    assert reason.startswith("422") and named in reason


def test_counts_per_request_are_bounded(tmp_path: Path) -> None:
    limits = IngestLimits(max_batches=2, max_snapshots=5, max_samples=8, max_series_defs=6)
    s = Service(tmp_path, limits)
    try:
        assert "max_batches" in s.refused(request(one("a"), one("a"), one("a")))
        t = now_ms() - 60_000
        snaps = batch("a", [(t + i * 1000, {CPU: 1.0}) for i in range(6)])
        assert "max_snapshots" in s.refused(request(snaps))
        values = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.0 for c in range(5)}
        assert "max_samples" in s.refused(request(batch("a", [(t, values), (t + 1000, values)])))
        seven = {("cpu_core_busy_percent", (("cpu", str(c)),)): 1.0 for c in range(7)}
        assert "max_series_defs" in s.refused(request(batch("a", [(t, seven)])))
        assert s.post(request(batch("a", [(t, values)]))) == 200
    finally:
        s.close()


def test_the_count_bounds_hold_before_a_large_body_is_parsed(svc: Service) -> None:
    # item 8: 10^6 series definitions; refused at the wire level, before any parsing
    b = one()
    b.series.extend([b.series[0]] * 20_000)  # > max_series_per_host (5000)
    raw = request(b).SerializeToString()
    assert len(raw) > 256 * 1024  # the piecewise parser's path
    assert "max_series_per_host" in svc.refused(gzip.compress(raw), enc="gzip")


def test_json_bodies_have_their_own_smaller_limit(tmp_path: Path) -> None:
    s = Service(tmp_path, IngestLimits(max_json_bytes=10_000))
    try:
        doc = json.loads(codec.encode(request(one()), json=True, encoding="identity"))
        doc["batches"][0]["host"]["os"] = " " * 10_000
        reason = s.refused(json.dumps(doc).encode(), JSON_CONTENT_TYPE)
        assert reason.startswith("413") and "max_json_bytes" in reason
    finally:
        s.close()


def test_the_number_of_hosts_is_bounded(svc: Service) -> None:
    # item 9: the host total is a setting (max_hosts) with a clear refusal
    for i in range(5):
        assert svc.post(request(one(f"host-{i}"))) == 200
    reason = svc.refused(request(one("host-5")))
    assert reason.startswith("403") and "max_hosts" in reason
    assert svc.post(request(one("host-0"))) == 200  # known hosts keep pushing


# --- item 3: what the store returns is what validation accepted -------------------------------

LOSSLESS = ["cpu_load1", "cpu_load5", "cpu_load15", "cpu_context_switches", "cpu_interrupts"]


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


UNKNOWN = st.one_of(
    st.builds(lambda f, v: _key(f, 0) + _varint(v), st.integers(7, 40), st.integers(0, 2**63)),
    st.builds(lambda f, b: _key(f, 1) + b, st.integers(13, 40), st.binary(min_size=8, max_size=8)),
    st.builds(lambda f, b: _key(f, 5) + b, st.integers(13, 40), st.binary(min_size=4, max_size=4)),
    st.builds(lambda f, b: _ld(f, b), st.integers(13, 40), st.binary(max_size=40)),
)


def _interleave(draw: st.DrawFn, lists: list[list[bytes]]) -> bytes:
    """The fields of all lists in a random interleaving that keeps each list's own order (the
    order of a repeated field's elements is its value)."""
    out: list[bytes] = []
    queues = [list(f) for f in lists]
    while any(queues):
        q = draw(st.sampled_from([q for q in queues if q]))
        out.append(q.pop(0))
    return b"".join(out)


@st.composite
def wire_requests(draw: st.DrawFn, host_id: str) -> tuple[bytes, dict[str, dict[int, float]]]:
    """A valid request as bytes with unknown fields anywhere and fields in any order protobuf
    allows (repeated fields keep their relative order), plus what it says: metric -> ts -> v."""
    metrics = draw(st.lists(st.sampled_from(LOSSLESS), min_size=1, max_size=5, unique=True))
    t0 = now_ms() - 3_600_000
    stamps = draw(st.lists(st.integers(0, 3_500_000), min_size=1, max_size=6, unique=True))
    finite = st.floats(allow_nan=False, allow_infinity=False)
    expected: dict[str, dict[int, float]] = {m: {} for m in metrics}
    fields: list[list[bytes]] = [[], [], [], []]  # host, series, snapshots, unknown
    host = _ld(1, host_id.encode()) + _ld(2, b"prop.example") + _key(11, 1) + struct.pack("<d", 5)
    fields[0].append(_ld(1, host + b"".join(draw(st.lists(UNKNOWN, max_size=2)))))
    for m in metrics:
        fields[1].append(_ld(2, _ld(1, m.encode()) + b"".join(draw(st.lists(UNKNOWN, max_size=1)))))
    for dt in stamps:
        ts = t0 + dt
        idx = draw(st.permutations(range(len(metrics))))[: draw(st.integers(0, len(metrics)))]
        vals = [draw(finite) for _ in idx]
        for i, v in zip(idx, vals, strict=True):
            expected[metrics[i]][ts] = v
        parts: list[list[bytes]] = [[_key(1, 0) + _varint(ts)]]
        if draw(st.booleans()):  # packed
            parts.append([_ld(2, b"".join(_varint(i) for i in idx))])
            parts.append([_ld(3, b"".join(struct.pack("<d", v) for v in vals))])
        else:  # one field per element, as protobuf also accepts
            parts.append([_key(2, 0) + _varint(i) for i in idx])
            parts.append([_key(3, 1) + struct.pack("<d", v) for v in vals])
        parts.append(draw(st.lists(UNKNOWN, max_size=3)))
        fields[2].append(_ld(3, _interleave(draw, parts)))
    fields[3] = draw(st.lists(UNKNOWN, max_size=4))
    body = _ld(1, _interleave(draw, fields)) + b"".join(draw(st.lists(UNKNOWN, max_size=2)))
    return body, {m: v for m, v in expected.items() if v}


def test_the_store_returns_what_validation_accepted(tmp_path: Path) -> None:
    s = Service(tmp_path, IngestLimits())
    counter = iter(range(1_000_000))
    try:

        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(data=st.data())
        def prop(data: st.DataObject) -> None:
            host_id = f"prop-{next(counter)}"
            body, expected = data.draw(wire_requests(host_id))
            accepted = IngestRequest.FromString(body)  # what validation sees
            assert s.post(body) == 200
            for metric, points in expected.items():
                got = s.loop.run_until_complete(
                    s.store.query_range(host_id, metric, 0, now_ms() + 1, tier=Tier.RAW)
                )
                stored = {p.ts_ms: p.value for sp in got.series for p in sp.points}
                assert stored == points, (metric, accepted)

        prop()
    finally:
        s.close()
