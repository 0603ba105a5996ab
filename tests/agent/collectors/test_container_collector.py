"""Per-container metrics: a cgroup v2 tree and a v1 tree laid out like real hosts', this
machine's real cgroup files, and the engine API over a Unix socket (a small fake server)."""

from __future__ import annotations

import json
import os
import re
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from test_collector_contract import check

from hostpulse import catalog
from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.collectors.containers.cgroups import Cgroup, CgroupReader
from hostpulse.agent.collectors.containers.collector import ContainerCollector
from hostpulse.agent.collectors.containers.engine_api import EngineError, list_containers
from hostpulse.agent.collectors.containers.fixture import (
    MiB,
    build_v1,
    build_v2,
    container_id,
)


def by_id(reading: Reading, key: str) -> dict[str, float]:
    return {dict(s.labels)["id"]: s.value for s in reading.samples if s.key == key}


def labels_of(reading: Reading, short: str) -> dict[str, str]:
    for s in reading.samples:
        if s.key == "container_state" and dict(s.labels)["id"] == short:
            return dict(s.labels)
    raise AssertionError(f"no container {short}")


def test_v2_tree_every_runtime(tmp_path: Path) -> None:
    layout = build_v2(tmp_path, n_docker=2)
    c = ContainerCollector(cgroup_root=str(tmp_path), sockets=[], systemd_services=True)
    r = c.collect(10.0)
    check(c, r, rates_expected=False)
    assert not r.errors
    runtimes = {
        labels_of(r, x.id[:12] if x.runtime != "systemd" else x.id)["runtime"] for x in layout
    }
    assert runtimes == {"docker", "podman", "containerd", "systemd"}
    cpu = by_id(r, "container_cpu_usage_seconds")
    mem = by_id(r, "container_memory_usage_bytes")
    ws = by_id(r, "container_memory_working_set_bytes")
    limit = by_id(r, "container_spec_memory_limit_bytes")
    oom = by_id(r, "container_oom_events")
    reads = by_id(r, "container_fs_reads_bytes")
    writes = by_id(r, "container_fs_writes_bytes")
    for x in layout:
        short = x.id[:12] if x.runtime != "systemd" else x.id
        assert cpu[short] == x.cpu_usec / 1e6
        assert mem[short] == x.memory
        assert ws[short] == x.memory - x.memory // 4  # minus inactive_file
        assert limit.get(short) == x.limit  # "max" = no limit = no series
        assert oom[short] == x.oom_kills
        assert reads[short] == x.read_bytes  # summed over both devices
        assert writes[short] == x.write_bytes
        state = labels_of(r, short)["state"]
        assert state == ("paused" if x.frozen else "running")
    # docker.service and containerd.service are services too; init.scope is not a container
    states = {dict(s.labels)["id"] for s in r.samples if s.key == "container_state"}
    assert {"docker.service", "containerd.service"} <= states
    assert len(states) == len(layout) + 2 and len(cpu) == len(layout)
    # without systemd_services only the engines' containers
    r = ContainerCollector(cgroup_root=str(tmp_path), sockets=[]).collect(10.0)
    assert {labels_of(r, s)["runtime"] for s in by_id(r, "container_cpu_usage_seconds")} == {
        "docker",
        "podman",
        "containerd",
    }


def test_rates_and_a_removed_container(tmp_path: Path) -> None:
    build_v2(tmp_path, n_docker=2)
    c = ContainerCollector(cgroup_root=str(tmp_path), sockets=[])
    first = c.collect(10.0)
    assert not by_id(first, "container_cpu_usage_percent")  # rates need two readings
    d0 = tmp_path / f"system.slice/docker-{container_id(0)}.scope"
    (d0 / "cpu.stat").write_text("usage_usec 3500000\n")  # +2.5 s of CPU in 5 s: 50 %
    io = "8:0 rbytes=6291456 wbytes=2097152 rios=1 wios=1 dbytes=0 dios=0\n"
    (d0 / "io.stat").write_text(io)  # +2 MiB read in 5 s
    second = c.collect(15.0)
    check(c, second, rates_expected=True)
    short = container_id(0)[:12]
    assert by_id(second, "container_cpu_usage_percent")[short] == pytest.approx(50.0)
    assert by_id(second, "container_fs_reads_bytes_per_second")[short] == pytest.approx(2 * MiB / 5)
    # a container that stops disappears with its series, and nothing breaks
    for f in sorted(d0.iterdir()):
        f.unlink()
    d0.rmdir()
    third = c.collect(20.0)
    assert short not in by_id(third, "container_cpu_usage_seconds")
    assert not third.errors


def test_a_container_that_goes_and_comes_back(tmp_path: Path) -> None:
    """Docker restarts a container in a cgroup of the same name: its series come back at the
    next walk of the tree, its CPU rate starts again from a new baseline (no rate from the
    old container's counter), and a pause shows in its state at once."""
    build_v2(tmp_path, n_docker=2)
    c = ContainerCollector(cgroup_root=str(tmp_path), sockets=[], rediscover=30.0)
    c.collect(10.0)
    d0 = tmp_path / f"system.slice/docker-{container_id(0)}.scope"
    saved = {f.name: f.read_text() for f in d0.iterdir()}
    for f in sorted(d0.iterdir()):
        f.unlink()
    d0.rmdir()
    short = container_id(0)[:12]
    assert short not in by_id(c.collect(15.0), "container_cpu_usage_seconds")
    d0.mkdir()
    for name, text in saved.items():
        (d0 / name).write_text(text)
    (d0 / "cpu.stat").write_text("usage_usec 100000\n")  # a new process: counters from 0
    back = c.collect(40.0)  # the next walk of the tree (rediscover)
    assert by_id(back, "container_cpu_usage_seconds")[short] == pytest.approx(0.1)
    assert short not in by_id(back, "container_cpu_usage_percent")  # a new baseline
    (d0 / "cpu.stat").write_text("usage_usec 2600000\n")  # +2.5 s of CPU in 5 s
    (d0 / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    paused = c.collect(45.0)
    assert by_id(paused, "container_cpu_usage_percent")[short] == pytest.approx(50.0)
    assert labels_of(paused, short)["state"] == "paused"
    (d0 / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert labels_of(c.collect(50.0), short)["state"] == "running"


def test_at_most_max_containers(tmp_path: Path) -> None:
    build_v2(tmp_path, n_docker=30)
    r = ContainerCollector(cgroup_root=str(tmp_path), sockets=[], max_containers=20).collect(1.0)
    assert len(by_id(r, "container_cpu_usage_seconds")) == 20
    assert any("max_containers" in e for e in r.errors)


def test_v1_tree_with_this_machines_memory_files(tmp_path: Path) -> None:
    build_v1(tmp_path, n_docker=3)
    c = ContainerCollector(cgroup_root=str(tmp_path), sockets=[])
    r = c.collect(1.0)
    check(c, r, rates_expected=False)
    short = container_id(1)[:12]
    assert by_id(r, "container_cpu_usage_seconds")[short] == 6.0
    assert by_id(r, "container_memory_usage_bytes")[short] == 201 * MiB
    assert by_id(r, "container_memory_working_set_bytes")[short] == 201 * MiB - 201 * MiB // 4
    assert by_id(r, "container_spec_memory_limit_bytes")[short] == 1024 * MiB
    assert by_id(r, "container_oom_events")[short] == 1
    assert by_id(r, "container_fs_reads_bytes")[short] == 8 * MiB  # "Total" lines not added
    assert by_id(r, "container_fs_writes_bytes")[short] == 3 * MiB
    assert labels_of(r, short)["state"] == "paused"  # freezer.state FROZEN
    assert labels_of(r, container_id(0)[:12])["state"] == "running"


def own_cgroup() -> tuple[str, Path]:
    """(version, directory) of this process's memory cgroup on this machine."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = [line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory"]
    if v1 and Path("/sys/fs/cgroup/memory").is_dir():
        return "v1", Path("/sys/fs/cgroup/memory" + v1[0])
    unified = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
    base = Path("/sys/fs/cgroup")
    if not (base / "cgroup.controllers").exists():
        base = Path("/sys/fs/cgroup/unified")
    return "v2", base / unified[0].lstrip("/")


def test_this_machines_real_cgroup_files(tmp_path: Path) -> None:
    """The parsers read what this kernel writes: our own cgroup, copied into a container's
    place in a fixture tree, then read in place."""
    version, real = own_cgroup()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024
    if version == "v1":
        build_v1(tmp_path, n_docker=1, copy_from=real)
    else:
        build_v2(tmp_path, n_docker=1)
        target = tmp_path / f"system.slice/docker-{container_id(0)}.scope"
        for f in real.iterdir():
            if f.is_file() and f.name.split(".")[0] in ("memory", "cpu", "io", "cgroup"):
                try:
                    (target / f.name).write_bytes(f.read_bytes())
                except OSError:
                    continue  # write-only control files
    r = ContainerCollector(cgroup_root=str(tmp_path), sockets=[]).collect(1.0)
    short = container_id(0)[:12]
    usage = by_id(r, "container_memory_usage_bytes")[short]
    assert usage >= rss  # the cgroup holds this process
    assert 0 < by_id(r, "container_memory_working_set_bytes")[short] <= usage
    limit = by_id(r, "container_spec_memory_limit_bytes").get(short)
    assert limit is None or limit >= usage
    assert by_id(r, "container_oom_events")[short] >= 0
    # and in place: the reader finds the real hierarchy and reads our cgroup without errors
    reader = CgroupReader("/sys/fs/cgroup")
    assert reader.version in (1, 2)
    reader.discover()
    tree = reader.tree
    assert tree is not None
    rel = os.path.relpath(real, tree) if version == "v1" or tree == "/sys/fs/cgroup" else None
    if rel is not None:
        stats = reader.read(Cgroup("docker", "x" * 64, rel))
        assert stats.memory_bytes is not None and stats.memory_bytes >= rss
        assert not stats.errors


def test_network_only_for_an_own_namespace(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self/ns").mkdir(parents=True)
    (proc / "self/ns/net").write_text("")
    (proc / "4242/ns").mkdir(parents=True)
    (proc / "4242/ns/net").write_text("")  # another inode: another namespace
    (proc / "4242/net").mkdir()
    header = (
        "Inter-|   Receive  |  Transmit\n face |bytes packets errs drop fifo frame compressed "
        "multicast|bytes packets errs drop fifo colls carrier compressed\n"
    )

    def netdev(rx: int, tx: int) -> str:
        return (
            header
            + "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
            + f"  eth0: {rx} 10 0 0 0 0 0 0 {tx} 5 0 0 0 0 0 0\n"
        )

    (proc / "4242/net/dev").write_text(netdev(1000, 500))
    cg = tmp_path / "cg"
    build_v2(cg, n_docker=1, pid=4242)
    c = ContainerCollector(cgroup_root=str(cg), proc_root=str(proc), sockets=[])
    r = c.collect(1.0)
    short = container_id(0)[:12]
    rx = {
        dict(s.labels)["interface"]: s.value
        for s in r.samples
        if s.key == "container_network_receive_bytes" and dict(s.labels)["id"] == short
    }
    assert rx == {"eth0": 1000.0}  # lo left out
    (proc / "4242/net/dev").write_text(netdev(3000, 900))
    r = c.collect(3.0)
    rate = [
        s
        for s in r.samples
        if s.key == "container_network_receive_bytes_per_second" and dict(s.labels)["id"] == short
    ]
    assert len(rate) == 1 and rate[0].value == pytest.approx(1000.0)
    check(c, r, rates_expected=True)
    # the host's own namespace: no per-container network series
    (proc / "4242/ns/net").unlink()
    os.link(proc / "self/ns/net", proc / "4242/ns/net")
    r = ContainerCollector(cgroup_root=str(cg), proc_root=str(proc), sockets=[]).collect(5.0)
    assert not [s for s in r.samples if s.key.startswith("container_network")]


# --- the engine API over a Unix socket ---------------------------------------------------


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeEngine:
    """Answers GET /containers/json like dockerd / podman's compat API."""

    def __init__(self, path: Path) -> None:
        self.status = 200
        self.body: bytes = b"[]"
        self.requests: list[str] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                engine.requests.append(self.path)
                self.send_response(engine.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(engine.body)))
                self.end_headers()
                self.wfile.write(engine.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = _Server(str(path), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[FakeEngine, str]]:
    path = tmp_path / "docker.sock"
    fake = FakeEngine(path)
    try:
        yield fake, str(path)
    finally:
        fake.close()


def docker_list(*items: tuple[int, str, str, str]) -> bytes:
    return json.dumps(
        [
            {
                "Id": container_id(n),
                "Names": [f"/{name}"],
                "Image": image,
                "State": state,
                "Status": "Up 3 hours",
                "Labels": {},
            }
            for n, name, image, state in items
        ]
    ).encode()


def test_names_and_images_from_the_engine_socket(
    tmp_path: Path, engine: tuple[FakeEngine, str]
) -> None:
    fake, path = engine
    fake.body = docker_list(
        (0, "web", "nginx:1.27", "running"),
        (1, "db", "postgres:17", "running"),
        (7, "old-job", "busybox", "exited"),
    )
    assert [c.name for c in list_containers(path)] == ["web", "db", "old-job"]
    assert fake.requests == ["/containers/json?all=1"]
    cg = tmp_path / "cg"
    build_v2(cg, n_docker=2)
    c = ContainerCollector(cgroup_root=str(cg), sockets=[path, str(tmp_path / "none.sock")])
    r = c.collect(1.0)
    check(c, r, rates_expected=False)
    web = labels_of(r, container_id(0)[:12])
    assert web == {
        "id": container_id(0)[:12],
        "name": "web",
        "image": "nginx:1.27",
        "runtime": "docker",
        "state": "running",
    }
    assert labels_of(r, container_id(1)[:12])["name"] == "db"
    stopped = labels_of(r, container_id(7)[:12])  # known to the engine, no cgroup
    assert stopped["state"] == "exited" and stopped["name"] == "old-job"
    assert container_id(7)[:12] not in by_id(r, "container_cpu_usage_seconds")
    # the list is asked again only after api_refresh (or for an unknown container)
    c.collect(3.0)
    assert len(fake.requests) == 2


def test_a_renamed_container_gets_its_new_name(
    tmp_path: Path, engine: tuple[FakeEngine, str]
) -> None:
    """``docker rename``: the next answer of the engine (api_refresh) renames its series."""
    fake, path = engine
    fake.body = docker_list((0, "web", "nginx:1.27", "running"))
    cg = tmp_path / "cg"
    build_v2(cg, n_docker=1)
    c = ContainerCollector(cgroup_root=str(cg), sockets=[path], api_refresh=60.0)
    short = container_id(0)[:12]
    assert labels_of(c.collect(1.0), short)["name"] == "web"
    fake.body = docker_list((0, "web-old", "nginx:1.27", "running"))
    renamed = c.collect(61.0)
    assert labels_of(renamed, short)["name"] == "web-old"
    names = {dict(s.labels)["name"] for s in renamed.samples if dict(s.labels)["id"] == short}
    assert names == {"web-old"}  # every series of it, not only its state


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (500, b'{"message": "boom"}', "answered 500"),
        (200, b"not json", "not JSON"),
        (200, b'{"a": 1}', "not a JSON array"),
    ],
)
def test_a_bad_engine_answer_is_an_engine_error_and_no_names(
    tmp_path: Path,
    engine: tuple[FakeEngine, str],
    status: int,
    body: bytes,
    says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, path = engine
    fake.status, fake.body = status, body
    with pytest.raises(EngineError, match=says):
        list_containers(path)
    cg = tmp_path / "cg"
    build_v2(cg, n_docker=1)
    with caplog.at_level("WARNING"):
        r = ContainerCollector(cgroup_root=str(cg), sockets=[path]).collect(1.0)
    short = container_id(0)[:12]
    assert labels_of(r, short)["name"] == short  # metrics still there, named by ID
    assert by_id(r, "container_memory_usage_bytes")[short] > 0
    assert any(says in rec.getMessage() for rec in caplog.records)


def test_no_cgroups_means_unsupported_not_zero(tmp_path: Path) -> None:
    c = ContainerCollector(cgroup_root=str(tmp_path / "nothing"), sockets=[])
    r = c.collect(1.0)
    assert not r.samples
    assert r.unsupported == {m.key for m in catalog.for_collector("containers")}


def test_cgroup_files_stay_open_within_a_bound_and_close_with_their_container(
    tmp_path: Path,
) -> None:
    made = build_v2(tmp_path, n_docker=3)
    reader = CgroupReader(str(tmp_path), max_open=1000)
    found = reader.discover()
    first = [reader.read(cg) for cg in found]
    reader.sweep()
    held = reader.open_files
    assert held >= 5 * len(found)  # about eight files per container
    d0 = tmp_path / f"system.slice/docker-{container_id(0)}.scope"
    (d0 / "memory.current").write_text("12345\n")  # rewritten in place: read again
    again = [reader.read(cg) for cg in found]
    reader.sweep()
    assert reader.open_files == held  # nothing reopened
    changed = next(s for s, cg in zip(again, found, strict=True) if cg.id == container_id(0))
    assert changed.memory_bytes == 12345
    assert [s.cpu_seconds for s in again] == [s.cpu_seconds for s in first]
    gone = next(cg for cg in found if cg.id == container_id(0))
    for f in sorted(d0.iterdir()):
        f.unlink()
    d0.rmdir()
    assert reader.read(gone).memory_bytes is None
    for cg in found:
        if cg is not gone:
            reader.read(cg)
    reader.sweep()
    assert reader.open_files < held  # the removed container's files are closed
    small = CgroupReader(str(tmp_path), max_open=4)
    for cg in small.discover():
        small.read(cg)
    assert small.open_files == 4
    assert len(made) >= 3
