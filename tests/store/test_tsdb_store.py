"""The TSDB backend (``hostpulse.store.tsdb``) against the real Debian ``victoria-metrics``
(single-node, and the cluster URL shapes through HAProxy) and ``prometheus`` (remote-write
receiver), with its registry on SQLite and on PostgreSQL: what is ingested comes back as
hosts, current values, raw history, per-minute avg/min/max/count and process lists; series
carry the exporter's names and ``host_id``; a resend is de-duplicated; a TSDB that is down
or refuses is reported so that the server answers 503 (the agent keeps its spool)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from tsdbkit import cluster_front, prometheus_receiver, victoria_metrics

from hostpulse import catalog
from hostpulse.protocol import IngestRequest
from hostpulse.sim.build import host_batch
from hostpulse.sim.model import SimHost, make_profile
from hostpulse.store.db import Database
from hostpulse.store.exceptions import InvalidRequestError, StoreUnavailableError
from hostpulse.store.tsdb import TsdbStore, endpoints, open_tsdb_store
from hostpulse.store.types import Agg, Tier

pytestmark = pytest.mark.anyio
T = TypeVar("T")
STEP_MS = 5000


@pytest.fixture(scope="module")
def vm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with victoria_metrics(tmp_path_factory.mktemp("vm")) as url:
        _flushed.append(url)
        try:
            yield url
        finally:
            _flushed.remove(url)


@pytest.fixture(scope="module")
def prom_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus_receiver(tmp_path_factory.mktemp("prom")) as url:
        yield url


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


#: The module's VictoriaMetrics: ``eventually`` asks it to make what it acknowledged searchable
#: (``/internal/force_flush``, there for tests) instead of waiting the 3-5 s it takes by itself.
_flushed: list[str] = []


async def eventually(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within: float = 30.0
) -> T:
    """``read()`` until ``ok`` (VictoriaMetrics makes samples searchable seconds after it
    acknowledged them)."""
    deadline = time.monotonic() + within
    while True:
        async with httpx.AsyncClient(timeout=30) as client:
            for url in _flushed:
                (await client.get(f"{url}/internal/force_flush")).raise_for_status()
        value = await read()
        if ok(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.25)


_seq = iter(range(random.randrange(10**6, 10**7) * 1000, 10**12))


def sim_host() -> SimHost:
    """A simulated host with an id of its own (the TSDB is shared by a module's tests)."""
    return SimHost(make_profile(next(_seq), seed=7), 7)


def sim_request(host: SimHost, minutes: int = 10) -> tuple[IngestRequest, np.ndarray]:
    now = int(time.time() * 1000)
    end = now - now % 60_000
    ts = np.arange(end - minutes * 60_000, end, STEP_MS, dtype=np.int64)
    return IngestRequest(batches=[host_batch(host, ts, STEP_MS / 1000)]), ts


def values_of(req: IngestRequest) -> dict[tuple[str, tuple[tuple[str, str], ...]], np.ndarray]:
    """Per series (key, labels) the values of every snapshot, in order."""
    batch = req.batches[0]
    keys = [(s.metric, tuple((lb.name, lb.value) for lb in s.labels)) for s in batch.series]
    out: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {k: [] for k in keys}
    for snap in batch.snapshots:
        for i, v in zip(snap.series_index, snap.values, strict=True):
            out[keys[i]].append(v)
    return {k: np.array(v) for k, v in out.items()}


@pytest.fixture
async def vm_store(vm_url: str, registry: Database) -> AsyncIterator[TsdbStore]:
    store = open_tsdb_store(vm_url, registry)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def check_round_trip(store: TsdbStore) -> None:
    host = sim_host()
    req, ts = sim_request(host)
    result = await store.ingest(req, int(time.time() * 1000))
    expected = values_of(req)
    assert result.accepted == sum(len(v) for v in expected.values())

    [rec] = [h for h in await store.hosts() if h.host_id == host.host_id]
    assert rec.hostname == req.batches[0].host.hostname and rec.last_seen_ms == int(ts[-1])
    assert rec.labels == {lb.name: lb.value for lb in req.batches[0].host.labels}
    assert {(s.metric, s.labels) for s in await store.series(host.host_id)} == set(expected)

    latest = await eventually(lambda: store.latest(host.host_id), lambda v: len(v) == len(expected))
    for v in latest:
        assert v.value == pytest.approx(expected[(v.metric, v.labels)][-1], rel=1e-9, abs=1e-9)
        assert v.ts_ms == int(ts[-1])

    busy = ("cpu_busy_percent", ())
    raw = await store.query_range(host.host_id, "cpu_busy_percent", int(ts[0]), int(ts[-1]))
    assert raw.tier is Tier.RAW and raw.step_ms == STEP_MS
    [series] = raw.series
    assert [p.ts_ms for p in series.points] == ts.tolist()
    assert [p.value for p in series.points] == pytest.approx(expected[busy].tolist(), rel=1e-9)

    per_minute = await store.query_range(
        host.host_id, "cpu_busy_percent", int(ts[0]), int(ts[-1]), step_ms=60_000, agg=Agg.MAX
    )
    assert per_minute.tier is Tier.MINUTE and per_minute.step_ms == 60_000
    [series] = per_minute.series
    blocks = expected[busy].reshape(-1, 12)  # 12 samples of 5 s per minute
    assert [p.ts_ms for p in series.points] == ts[::12].tolist()
    assert [p.count for p in series.points] == [12] * len(blocks)
    assert [p.value for p in series.points] == pytest.approx(blocks.max(axis=1), rel=1e-9)
    assert [p.min for p in series.points] == pytest.approx(blocks.min(axis=1), rel=1e-9)
    assert [p.max for p in series.points] == pytest.approx(blocks.max(axis=1), rel=1e-9)
    avg = await store.query_range(
        host.host_id, "cpu_busy_percent", int(ts[0]), int(ts[-1]), step_ms=60_000
    )
    assert [p.value for p in avg.series[0].points] == pytest.approx(blocks.mean(axis=1))

    # labelled series, filtered by label
    modes = await store.query_range(
        host.host_id,
        "cpu_usage_percent",
        int(ts[0]),
        int(ts[-1]),
        labels={"mode": "user"},
        step_ms=60_000,
    )
    [user] = modes.series
    assert user.labels == (("mode", "user"),)
    blocks = expected[("cpu_usage_percent", (("mode", "user"),))].reshape(-1, 12)
    assert [p.value for p in user.points] == pytest.approx(blocks.mean(axis=1))

    # one process list kept per 30 s (the simulator attaches one every 6th snapshot)
    procs = await store.process_history(host.host_id, int(ts[0]), int(ts[-1]))
    with_procs = [s for s in req.batches[0].snapshots if s.top_cpu]
    assert [p.ts_ms for p in procs] == [s.timestamp_ms for s in with_procs]
    newest = await store.processes(host.host_id)
    assert newest is not None and newest.ts_ms == with_procs[-1].timestamp_ms
    assert [p.pid for p in newest.top_cpu] == [p.pid for p in with_procs[-1].top_cpu]
    at = await store.processes(host.host_id, with_procs[0].timestamp_ms + 1000)
    assert at is not None and at.ts_ms == with_procs[0].timestamp_ms


async def test_round_trip_on_victoria_metrics(vm_store: TsdbStore) -> None:
    await check_round_trip(vm_store)
    assert vm_store._history.combined is True  # one range query per history read


async def test_a_custom_series_labelled_rollup_keeps_its_history(vm_store: TsdbStore) -> None:
    """``rollup`` is the label VictoriaMetrics' combined history query names its aggregations
    with: a custom series with a label of that name is read one aggregation a query."""
    host = sim_host()
    req, ts = sim_request(host, minutes=2)
    batch = req.batches[0]
    batch.series.add(metric="custom:jobs").labels.add(name="rollup", value="daily")
    for i, snap in enumerate(batch.snapshots):
        snap.series_index.append(len(batch.series) - 1)
        snap.values.append(float(i))
    await vm_store.ingest(req, int(time.time() * 1000))
    res = await eventually(
        lambda: vm_store.query_range(
            host.host_id, "custom:jobs", int(ts[0]), int(ts[-1]), step_ms=60_000, agg=Agg.MIN
        ),
        lambda r: bool(r.series and len(r.series[0].points) == 2),
    )
    [series] = res.series
    assert series.labels == (("rollup", "daily"),)
    assert [(p.ts_ms, p.count) for p in series.points] == [(int(ts[0]), 12), (int(ts[12]), 12)]
    assert [(p.value, p.min, p.max) for p in series.points] == [(0, 0, 11), (12, 12, 23)]


async def test_round_trip_on_prometheus(prom_url: str, tmp_path: Path) -> None:
    from hostpulse.store import sqlite_url

    database = Database(sqlite_url(tmp_path / "r.db"))
    store = open_tsdb_store(prom_url, database, owns_database=True)
    await store.start()
    try:
        assert await store.ready()
        await check_round_trip(store)
        assert store._history.combined is False  # no aggr_over_time: a query per aggregation
    finally:
        await store.close()


async def test_series_carry_the_exporter_names_and_host_id(
    vm_store: TsdbStore, vm_url: str
) -> None:
    host = sim_host()
    req, ts = sim_request(host, minutes=1)
    await vm_store.ingest(req, int(time.time() * 1000))
    counters = [
        s for s in req.batches[0].series if catalog.BY_KEY[s.metric].kind is catalog.Kind.COUNTER
    ]
    assert counters, "the simulator sends counters too"
    wanted = {catalog.BY_KEY[s.metric].prom_name for s in req.batches[0].series}
    assert any(n.endswith("_total") for n in wanted)

    async def names() -> set[str]:
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"{vm_url}/api/v1/series", params={"match[]": f'{{host_id="{host.host_id}"}}'}
            )
        return {m["__name__"] for m in r.json()["data"]}

    assert await eventually(names, lambda found: found == wanted) == wanted

    async def newest() -> list[dict]:
        # The series index answers before the samples are searchable (CI once saw an
        # empty result here right after /api/v1/series listed every name).
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"{vm_url}/api/v1/query",
                params={
                    "query": f'node_cpu_busy_percent{{host_id="{host.host_id}"}}',
                    "time": str(ts[-1] / 1000),
                },
            )
        return r.json()["data"]["result"]

    [item] = await eventually(newest, lambda result: len(result) == 1)
    assert item["metric"] == {"__name__": "node_cpu_busy_percent", "host_id": host.host_id}


@pytest.mark.parametrize("backend", ["vm", "prometheus"])
async def test_a_resent_request_is_stored_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """At-least-once delivery resends what was not acknowledged; the TSDB keeps one sample
    per series and timestamp (VictoriaMetrics: -dedup.minScrapeInterval=1ms; Prometheus:
    an identical sample is a no-op, older ones need out_of_order_time_window)."""
    from hostpulse.store import sqlite_url

    url = request.getfixturevalue("vm_url" if backend == "vm" else "prom_url")
    store = open_tsdb_store(url, Database(sqlite_url(tmp_path / "r.db")), owns_database=True)
    await store.start()
    try:
        host = sim_host()
        req, ts = sim_request(host, minutes=2)
        newer, _ = sim_request(host, minutes=1)
        for snap in newer.batches[0].snapshots:
            snap.timestamp_ms += 60_000
        await store.ingest(req, 0)
        await store.ingest(newer, 0)
        await store.ingest(req, 0)  # the agent did not get the first answer: sent again
        query = (
            f'count_over_time(node_cpu_busy_percent{{host_id="{host.host_id}"}}[{180_000 + 1}ms])'
        )
        at = str((int(ts[0]) + 180_000) / 1000)

        async def count() -> float:
            async with httpx.AsyncClient() as client:
                r = await client.get(f"{url}/api/v1/query", params={"query": query, "time": at})
            result = r.json()["data"]["result"]
            return float(result[0]["value"][1]) if result else 0.0

        assert await eventually(count, lambda n: n >= 36, within=20) == 36  # 3 min of 5 s
        await asyncio.sleep(2)  # VictoriaMetrics de-duplicates when parts are merged/read
        assert await count() == 36
    finally:
        await store.close()


async def test_cluster_url_shapes(vm_url: str, tmp_path: Path) -> None:
    """Writes to ``/insert/0/prometheus`` and reads from ``/select/0/prometheus``: the Debian
    package has only single-node, so HAProxy maps the cluster paths onto its ``/prometheus``
    API (the same handlers vminsert and vmselect serve under those prefixes)."""
    from hostpulse.store import sqlite_url

    with cluster_front(tmp_path / "haproxy", vm_url) as front:
        store = open_tsdb_store(
            f"{front}/insert/0/prometheus",
            Database(sqlite_url(tmp_path / "r.db")),
            tsdb_query_url=f"{front}/select/0/prometheus",
            owns_database=True,
        )
        assert store.endpoints.write == f"{front}/insert/0/prometheus/api/v1/write"
        assert store.endpoints.query_range == f"{front}/select/0/prometheus/api/v1/query_range"
        await store.start()
        try:
            assert await store.ready()
            host = sim_host()
            req, ts = sim_request(host, minutes=1)
            await store.ingest(req, 0)
            raw = await eventually(
                lambda: store.query_range(
                    host.host_id, "cpu_busy_percent", int(ts[0]), int(ts[-1])
                ),
                lambda r: bool(r.series and len(r.series[0].points) == len(ts)),
            )
            assert [p.ts_ms for p in raw.series[0].points] == ts.tolist()
        finally:
            await store.close()


def test_url_shapes_and_their_errors() -> None:
    single = endpoints("http://vm:8428/")
    assert (single.write, single.query) == (
        "http://vm:8428/api/v1/write",
        "http://vm:8428/api/v1/query",
    )
    assert endpoints("http://prom:9090/api/v1/write").write == "http://prom:9090/api/v1/write"
    cluster = endpoints(
        "http://vminsert:8480/insert/7/prometheus", "http://vmselect:8481/select/7/prometheus"
    )
    assert cluster.write == "http://vminsert:8480/insert/7/prometheus/api/v1/write"
    assert cluster.query_range == "http://vmselect:8481/select/7/prometheus/api/v1/query_range"
    secret = endpoints("https://user:pw@vm.example:443")
    assert "pw" not in secret.shown and secret.write.startswith("https://user:pw@")
    problems = {
        ("http://vminsert:8480/insert/0/prometheus", None): "also set tsdb_query_url",
        ("http://vmselect:8481/select/0/prometheus", None): "writes go to vminsert",
        ("http://vm:8428", "http://vminsert:8480/insert/0/prometheus"): "queries go to vmselect",
        ("vm:8428", None): "not an http",
        ("http://vm:8428?x=1", None): "query or fragment",
    }
    for (url, query), message in problems.items():
        with pytest.raises(ValueError, match=message):
            endpoints(url, query)


async def test_tsdb_down_or_refusing_is_unavailable(registry: Database) -> None:
    """Nothing listening, or an error status: StoreUnavailableError (the server answers 503
    with Retry-After and the agent keeps the samples in its spool)."""
    from promserver import free_port

    down = open_tsdb_store(f"http://127.0.0.1:{free_port()}", registry, timeout_s=5)
    await down.start()
    try:
        assert not await down.ready()
        req, _ = sim_request(sim_host(), minutes=1)
        with pytest.raises(StoreUnavailableError, match="did not take the samples"):
            await down.ingest(req, 0)
    finally:
        await down.close()

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.path.endswith("write") else 200, text="boom")

    store = TsdbStore(
        registry, endpoints("http://tsdb.invalid"), transport=httpx.MockTransport(refuse)
    )
    await store.start()
    try:
        with pytest.raises(StoreUnavailableError, match="HTTP 500: boom"):
            await store.ingest(sim_request(sim_host(), minutes=1)[0], 0)
    finally:
        await store.close()


async def test_a_custom_series_may_not_take_a_catalog_name(vm_store: TsdbStore) -> None:
    req, _ = sim_request(sim_host(), minutes=1)
    batch = req.batches[0]
    batch.series.add(metric="custom:node_cpu_busy_percent")
    with pytest.raises(InvalidRequestError, match="name of a catalog series"):
        await vm_store.ingest(req, 0)
    del batch.series[-1]
    batch.series.add(metric="custom:jobs").labels.add(name="host_id", value="x")
    with pytest.raises(InvalidRequestError, match="reserved"):
        await vm_store.ingest(req, 0)


async def test_replicas_share_the_registry(vm_url: str, registry: Database) -> None:
    """Two stores on one database and one TSDB (two server replicas): a host ingested by one
    is listed by the other, with its last_seen, and its history reads the same."""
    a = TsdbStore(registry, endpoints(vm_url), flush_interval_ms=100, refresh_interval_ms=100)
    b = TsdbStore(registry, endpoints(vm_url), flush_interval_ms=100, refresh_interval_ms=100)
    await a.start()
    await b.start()
    try:
        host = sim_host()
        req, ts = sim_request(host, minutes=1)
        await a.ingest(req, 0)

        async def seen_by_b() -> Any:
            return await b.host(host.host_id)

        rec = await eventually(seen_by_b, lambda r: r is not None and r.last_seen_ms > 0)
        assert rec is not None and rec.last_seen_ms == int(ts[-1])
        raw = await eventually(
            lambda: b.query_range(host.host_id, "memory_usage_percent", int(ts[0]), int(ts[-1])),
            lambda r: bool(r.series and len(r.series[0].points) == len(ts)),
        )
        assert len(raw.series[0].points) == len(ts)
        assert (await b.processes(host.host_id)) is not None
    finally:
        await a.close()
        await b.close()
