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
from hostpulse.store import HeadBudget, open_store
from hostpulse.store.base import Store
from hostpulse.store.types import Tier

PB = PROTOBUF_CONTENT_TYPE
CPU = ("cpu_busy_percent", ())
LIMITS = IngestLimits(max_hosts=5, max_head_cells=2000, max_processes=20)


class Service:
    """A real store and an IngestService on their own event loop."""

    def __init__(
        self, tmp: Path, limits: IngestLimits = LIMITS, budget: HeadBudget | None = None
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.store: Store = open_store(str(tmp / "store"), head_budget=budget)
        self.loop.run_until_complete(self.store.start())
        self.service = IngestService(self.store, limits, lambda: now_ms() / 1000)

    def post(self, req: IngestRequest | bytes, ctype: str = PB, enc: str | None = None) -> int:
        body = req if isinstance(req, bytes) else codec.encode(req, encoding="identity")
        self.loop.run_until_complete(self.service.ingest_body(body, ctype, enc))
        return 200

    def refused(self, req: IngestRequest | bytes, ctype: str = PB, enc: str | None = None) -> str:
        """The status and reason of a refused request; asserts nothing new was stored."""
        # the hosts and series of earlier requests are written to the database behind them
        # (store/registry.py): let that finish first, so a change seen below is this request's
        self.loop.run_until_complete(self.store.registrar.flush())
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
def wire_batch(draw: st.DrawFn, host_id: str) -> tuple[bytes, dict[str, dict[int, float]]]:
    """One valid HostBatch as bytes with unknown fields anywhere and fields in any order
    protobuf allows (repeated fields keep their relative order), plus what it says:
    metric -> ts -> value."""
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
    return _interleave(draw, fields), {m: v for m, v in expected.items() if v}


@st.composite
def wire_requests(
    draw: st.DrawFn, host_ids: list[str]
) -> tuple[bytes, dict[str, dict[str, dict[int, float]]]]:
    """A valid request of one batch per host, with unknown fields between the batches, plus
    what it says: host -> metric -> ts -> value."""
    batches: list[bytes] = []
    expected: dict[str, dict[str, dict[int, float]]] = {}
    for host_id in host_ids:
        data, says = draw(wire_batch(host_id))
        batches.append(_ld(1, data))
        expected[host_id] = says
    body = _interleave(draw, [batches, draw(st.lists(UNKNOWN, max_size=2))])
    return body, expected


def test_the_store_returns_what_validation_accepted(tmp_path: Path) -> None:
    """Also after the head is compacted into blocks (the metrics are stored losslessly)."""
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
            n = next(counter)
            hosts = [f"prop-{n}-{b}" for b in range(data.draw(st.integers(1, 3)))]
            body, expected = data.draw(wire_requests(hosts))
            accepted = IngestRequest.FromString(body)  # what validation sees
            assert s.post(body) == 200

            def check(when: str) -> None:
                for host_id, says in expected.items():
                    for metric, points in says.items():
                        got = s.loop.run_until_complete(
                            s.store.query_range(host_id, metric, 0, now_ms() + 1, tier=Tier.RAW)
                        )
                        stored = {p.ts_ms: p.value for sp in got.series for p in sp.points}
                        assert stored == points, (when, host_id, metric, accepted)

            check("in the head")
            if n % 10 == 0:
                s.loop.run_until_complete(s.store.maintain(now_ms()))
                check("in blocks")

        prop()
    finally:
        s.close()


def _sparse_past(host: str, k: int) -> IngestRequest:
    """1,000 series, one snapshot in each of 20 past ten-minute windows."""
    hb = batch(host, [])
    for c in range(1000):
        hb.series.add(metric="cpu_core_busy_percent").labels.add(name="cpu", value=str(c))
    start = now_ms() - 6 * 86_400_000 + k * 20 * 600_000
    for w in range(20):
        snap = hb.snapshots.add(timestamp_ms=start + w * 600_000)
        snap.series_index.extend(range(1000))
        snap.values.extend([float(k)] * 1000)
    return request(hb)


def test_a_host_over_its_head_budget_gets_429_with_retry_after(tmp_path: Path) -> None:
    """Issue 13: one key filling the in-memory head with back-filled windows is told to come
    back after the next maintenance run; nothing of the refused request is stored."""
    limits = IngestLimits(max_head_cells=20_000, head_full_retry_after=60)
    svc = Service(tmp_path, limits, HeadBudget(per_host=2 * 1024 * 1024, total=0))
    try:
        for k in range(100):
            req = _sparse_past("greedy", k)
            before = svc.loop.run_until_complete(svc.store.stats())
            try:
                svc.post(req)
            except IngestError as exc:
                assert exc.status == 429
                assert exc.headers == {"Retry-After": "60"}
                assert "max_head_bytes_per_host" in exc.reason
                assert svc.loop.run_until_complete(svc.store.stats()) == before
                break
        else:
            pytest.fail("the head grew past its budget without a refusal")
        svc.post(request(one("other")))  # another host is not affected
    finally:
        svc.close()


def _containers(host: str, names: list[str], ts: int) -> IngestRequest:
    """A table of per-container series (4 each), as an agent with containers sends it."""
    hb = batch(host, [])
    for name in names:
        for c in range(4):
            hb.series.add(metric="cpu_core_busy_percent").labels.add(
                name="cpu", value=f"{name}/{c}"
            )
    snap = hb.snapshots.add(timestamp_ms=ts)
    snap.series_index.extend(range(len(hb.series)))
    snap.values.extend([1.0] * len(hb.series))
    return request(hb)


def test_series_limit_counts_active_series_so_container_churn_is_not_refused_for_ever(
    tmp_path: Path,
) -> None:
    """Issue 16: max_series_per_host counted every series ever seen, so a host whose
    containers come and go hit it for good. Now a series counts while it reported within
    series_active_window; one that keeps reporting with an unchanged table still counts."""
    now = [float(now_ms() // 1000)]
    limits = IngestLimits(max_series_per_host=40, series_active_window_ms=3_600_000)
    loop = asyncio.new_event_loop()
    store = open_store(str(tmp_path / "store"))
    loop.run_until_complete(store.start())
    svc = IngestService(store, limits, lambda: now[0])

    def send(names: list[str]) -> None:
        loop.run_until_complete(svc.ingest(_containers("churn", names, int(now[0] * 1000))))

    try:
        send([f"a{i}" for i in range(8)])  # 32 series
        now[0] += 600
        with pytest.raises(IngestError) as info:  # the a* containers are still active
            send([f"b{i}" for i in range(8)])
        assert info.value.status == 422
        assert "64 series active" in info.value.reason
        assert "max_series_per_host" in info.value.reason
        for generation in "bcdef":  # every two hours a new set of containers: accepted
            now[0] += 7200
            send([f"{generation}{i}" for i in range(8)])
        # series that keep reporting with one unchanged table for hours stay active, also
        # when another table of the host brings new ones
        now[0] += 7200
        for _ in range(12):
            send([f"g{i}" for i in range(5)])  # 20 series
            now[0] += 600
        with pytest.raises(IngestError) as info:
            send([f"h{i}" for i in range(6)])  # 24 more
        assert "44 series active" in info.value.reason
        send([f"h{i}" for i in range(5)])  # 20 more: 40, at the limit
    finally:
        loop.run_until_complete(store.close())
        loop.close()
