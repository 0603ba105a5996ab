"""Several server URLs: the shipper moves to the next one when a server fails, returns to the
first in time, keeps at-least-once delivery; enrollment works against any of them."""

from __future__ import annotations

import logging
import random
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest
from delivery_helpers import Receiver, Step, make_batch
from pgdb import empty_pg
from system_helpers import (
    Proc,
    enrollment_token,
    free_port,
    spool_state,
    start_agent,
    start_server,
    stored_timestamps,
    wait_until,
)

from hostpulse.agent.config import ConfigError, load_settings
from hostpulse.agent.delivery.enroll import EnrollError, request_key
from hostpulse.agent.delivery.failover import Failover
from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.delivery.spool import Spool
from hostpulse.agent.delivery.transport import Response, TransportError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A transport answering from a list: a status, or an exception to raise."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls
        self.up = True
        self.closed = 0

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        self.calls.append(self.name)
        if not self.up:
            raise TransportError("ConnectionRefusedError: refused")
        return Response(200, {}, b"{}")

    def close(self) -> None:
        self.closed += 1


def test_failover_order_rounds_and_failback() -> None:
    clock = FakeClock()
    calls: list[str] = []
    made: dict[str, Scripted] = {}

    def make(url: str) -> Scripted:
        made[url] = Scripted(url, calls)
        return made[url]

    f = Failover(["a", "b", "c"], make, failback_after=60.0, monotonic=clock)
    assert f.url == "a" and made == {}  # transports are made lazily
    assert f.failed() is False and f.url == "b"
    assert f.failed() is False and f.url == "c"
    assert f.failed() is True and f.url == "a"  # every URL failed: back off, start again at a
    assert f.failed() is False and f.url == "b"
    f.succeeded()
    assert f.url == "b"  # stays while it works ...
    clock.now += 59.0
    f.succeeded()
    assert f.url == "b"
    clock.now += 1.0
    f.succeeded()
    assert f.url == "a"  # ... and goes back to the first after failback_after
    assert f.failed() is False and f.url == "b"  # a still down: straight on to b
    clock.now += 30.0
    f.succeeded()
    assert f.url == "b"  # a is tried again only failback_after after it last failed
    clock.now += 30.0
    f.succeeded()
    assert f.url == "a"
    # a round that starts on a later URL ends after every URL failed once
    assert f.failed() is False and f.url == "b"
    f.succeeded()
    assert f.failed() is False and f.url == "c"
    assert f.failed() is False and f.url == "a"
    assert f.failed() is True and f.url == "a"


def test_one_url_backs_off_at_every_failure() -> None:
    f = Failover(["a"], lambda url: Scripted(url, []))
    assert f.failed() is True and f.failed() is True and f.url == "a"


def test_server_list_from_flags_env_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yml"
    cfg.write_text("shipper:\n  server:\n    - http://a:8400\n    - https://b.example/hp\n")
    s = load_settings(cfg, env={})
    assert s.shipper.server_urls() == ["http://a:8400", "https://b.example/hp"]
    env = {"HOSTPULSE_SHIPPER__SERVER": "http://a:1, http://b:2"}
    assert load_settings(env=env).shipper.server_urls() == ["http://a:1", "http://b:2"]
    over = {"shipper.server": "http://c:3,http://d:4"}
    assert load_settings(cfg, env={}, overrides=over).shipper.server_urls() == [
        "http://c:3",
        "http://d:4",
    ]
    with pytest.raises(ConfigError, match=r"shipper\.server: expected http\(s\)://host"):
        load_settings(env={}, overrides={"shipper.server": "http://a:1,ftp://b"})
    cfg.write_text("shipper:\n  server: [http://a:1, 5]\n")
    with pytest.raises(ConfigError, match=r"shipper\.server\[1\]: expected a URL"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="no server URL"):
        load_settings(env={}, overrides={"shipper.server": " , "})


def _shipper(tmp_path: Path, urls: list[str], **kw: object) -> tuple[Shipper, list[float]]:
    slept: list[float] = []
    settings = ShipperSettings(
        server=",".join(urls),
        api_key="k",
        timeout=5.0,
        backoff_min=0.05,
        backoff_max=0.2,
        drain_pause=0.0,
        **kw,  # type: ignore[arg-type]
    )
    spool = Spool(SpoolSettings(dir=str(tmp_path / "spool")))
    shipper = Shipper(settings, spool, rng=random.Random(1), sleep=slept.append)
    return shipper, slept


def test_shipper_sends_to_the_next_server_at_once_when_the_first_is_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    b = Receiver()
    b.start()
    shipper, slept = _shipper(tmp_path, [dead, b.url])
    try:
        shipper.start()
        with caplog.at_level(logging.WARNING):
            for i in range(3):
                shipper.put(make_batch(ts_ms=1_000 * (i + 1)))
                b.wait_for(i + 1)
        assert slept == []  # no backoff: the second server took the first request
        assert shipper.servers.url == b.url
    finally:
        shipper.close(5.0)
        b.stop()
    assert sorted(ts for a in b.arrivals for ts in a.timestamps()) == [1_000, 2_000, 3_000]
    assert shipper.stats().sent == 3
    assert f"failing over to {b.url}" in caplog.text


def test_5xx_fails_over_retry_after_and_401_do_not(tmp_path: Path) -> None:
    a, b = Receiver(), Receiver()
    a.script = [
        Step(status=502),  # 5xx: the same body goes to b at once
        Step(status=503, headers=(("Retry-After", "0"),)),  # up but busy: wait, stay on a
        Step(status=401),  # no valid key: same everywhere, stay on a
    ]
    a.start()
    b.start()
    shipper, slept = _shipper(tmp_path, [a.url, b.url], failback_after=1.0)
    try:
        shipper.start()
        shipper.put(make_batch(ts_ms=1_000))
        b.wait_for(1)
        assert slept == []
        assert [x.timestamps() for x in a.arrivals] == [[1_000]]
        shipper.servers.current = 0  # as after failback_after
        shipper.put(make_batch(ts_ms=2_000))
        a.wait_for(4)  # 503 + Retry-After, 401, then accepted: all on a
        assert len(slept) == 2 and len(b.arrivals) == 1
    finally:
        shipper.close(5.0)
        a.stop()
        b.stop()
    assert shipper.stats().sent == 2


def test_enrollment_fails_only_when_no_server_answers() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EnrollError, match=r"cannot reach .*; cannot reach "):
        request_key(ShipperSettings(server=f"{dead},{dead}"), "tok", "h", "h")


@pytest.mark.slow
def test_real_agent_fails_over_between_two_real_servers(tmp_path: Path, pg_database: str) -> None:
    """Two ``hostpulse server`` processes sharing one PostgreSQL database (keys, hosts), each
    with its own sample store. The agent enrolls while the first is down, ships to the second,
    moves to the first when it comes up, to the second when the first is SIGKILLed, and every
    snapshot it took is stored (at least once, in one store or the other)."""
    db = empty_pg(pg_database)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    data = [tmp_path / "data-a", tmp_path / "data-b"]
    token = "m" * 24
    extra = ("--database-url", db, "--metrics-token", token)
    b = start_server(data[1], ports[1], tmp_path / "b.log", *extra)
    a: Proc | None = None
    spool = tmp_path / "spool"
    agent = start_agent(
        urls[0],
        spool,
        tmp_path / "agent.log",
        "--server",
        urls[1],
        enroll=enrollment_token(urls[1]),
        HOSTPULSE_SHIPPER__FAILBACK_AFTER="2",
    )
    try:
        wait_until(lambda: stored_requests(urls[1], token) >= 2, 30, "samples on b")
        a = start_server(data[0], ports[0], tmp_path / "a.log", *extra)
        wait_until(lambda: stored_requests(urls[0], token) >= 2, 30, "failback to a")
        a.kill()  # SIGKILL by PID, mid-stream
        before = stored_requests(urls[1], token)
        wait_until(lambda: stored_requests(urls[1], token) >= before + 3, 30, "failover to b")
        assert agent.terminate() == 0
    finally:
        agent.kill()
        b.kill()
        if a is not None:
            a.kill()
    log = agent.output()
    assert "enrolled host" in log and "failing over to" in log
    assert "trying the preferred server" in log
    counters = spool_state(spool)
    assert counters["sent"] == counters["queued"]
    assert counters.get("rejected", 0) == counters.get("dropped_size", 0) == 0
    stamps = [stored_timestamps(d) for d in data]
    for one in stamps:
        assert len(one) == len(set(one)), "a store holds a sample twice"
    assert stamps[0] and stamps[1]
    assert len(set(stamps[0]) | set(stamps[1])) == counters["queued"]


def stored_requests(url: str, token: str) -> int:
    """``hostpulse_ingest_requests_total{outcome="stored"}`` from the server's /metrics."""
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith('hostpulse_ingest_requests_total{outcome="stored"}'):
            return int(float(line.split()[-1]))
    return 0
