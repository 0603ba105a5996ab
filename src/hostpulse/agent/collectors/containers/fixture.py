"""A cgroup tree laid out like a real host's, for the tests and ``bench/agent_overhead.py``.

``build_v2`` writes the unified hierarchy of a systemd host running Docker (systemd cgroup
driver), rootful and rootless Podman, Kubernetes with containerd, and a few services, with the
files and formats of a 6.x kernel. ``build_v1`` writes the per-controller trees of a cgroup v1
host (Docker's cgroupfs driver: ``<controller>/docker/<id>``); ``copy_from`` takes the memory
files from a real cgroup of this machine instead of made-up ones.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class FixtureContainer:
    runtime: str
    id: str
    path: str
    cpu_usec: int
    memory: int
    limit: int | None
    oom_kills: int
    read_bytes: int
    write_bytes: int
    frozen: bool = False


def container_id(n: int) -> str:
    return hashlib.sha256(f"container-{n}".encode()).hexdigest()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v2_files(d: Path, c: FixtureContainer, pid: int | None) -> None:
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    _write(d / "cgroup.events", f"populated 1\nfrozen {int(c.frozen)}\n")
    _write(d / "cgroup.procs", f"{pid}\n" if pid is not None else "")
    _write(
        d / "cpu.stat",
        f"usage_usec {c.cpu_usec}\nuser_usec {c.cpu_usec * 3 // 4}\n"
        f"system_usec {c.cpu_usec // 4}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"
        "nr_bursts 0\nburst_usec 0\n",
    )
    _write(d / "memory.current", f"{c.memory}\n")
    _write(d / "memory.max", f"{c.limit}\n" if c.limit is not None else "max\n")
    _write(
        d / "memory.stat",
        f"anon {c.memory // 2}\nfile {c.memory // 2}\nkernel 1048576\nshmem 0\n"
        f"active_anon {c.memory // 2}\ninactive_anon 0\nactive_file {c.memory // 4}\n"
        f"inactive_file {c.memory // 4}\nunevictable 0\n",
    )
    _write(
        d / "memory.events",
        f"low 0\nhigh 0\nmax {c.oom_kills}\noom {c.oom_kills}\noom_kill {c.oom_kills}\n"
        "oom_group_kill 0\n",
    )
    _write(
        d / "io.stat",
        f"8:0 rbytes={c.read_bytes // 2} wbytes={c.write_bytes} rios=10 wios=20 dbytes=0 "
        f"dios=0\n253:0 rbytes={c.read_bytes - c.read_bytes // 2} wbytes=0 rios=3 wios=0 "
        "dbytes=0 dios=0\n",
    )
    _write(d / "pids.current", "3\n")


def v2_layout(n_docker: int = 2) -> list[FixtureContainer]:
    """The containers ``build_v2`` lays out (``n_docker`` Docker ones, then one of each other
    kind)."""
    out = []
    for i in range(n_docker):
        cid = container_id(i)
        out.append(
            FixtureContainer(
                "docker",
                cid,
                f"system.slice/docker-{cid}.scope",
                cpu_usec=1_000_000 * (i + 1),
                memory=(100 + i) * MiB,
                limit=512 * MiB if i % 2 == 0 else None,
                oom_kills=i % 3,
                read_bytes=4 * MiB,
                write_bytes=2 * MiB,
            )
        )
    pod = "f3b1c2d4_5e6f_4a7b_8c9d_0e1f2a3b4c5d"
    extra = [
        ("podman", f"machine.slice/libpod-{container_id(100)}.scope/container", 100),
        (
            "podman",
            "user.slice/user-1000.slice/user@1000.service/user.slice/"
            f"libpod-{container_id(101)}.scope",
            101,
        ),
        (
            "containerd",
            "kubepods.slice/kubepods-burstable.slice/"
            f"kubepods-burstable-pod{pod}.slice/cri-containerd-{container_id(102)}.scope",
            102,
        ),
    ]
    for runtime, path, n in extra:
        out.append(
            FixtureContainer(
                runtime,
                container_id(n),
                path,
                cpu_usec=5_000_000,
                memory=64 * MiB,
                limit=256 * MiB,
                oom_kills=0,
                read_bytes=MiB,
                write_bytes=MiB,
                frozen=n == 101,
            )
        )
    for unit in ("nginx.service", "ssh.service"):
        out.append(
            FixtureContainer(
                "systemd",
                unit,
                f"system.slice/{unit}",
                cpu_usec=2_000_000,
                memory=20 * MiB,
                limit=None,
                oom_kills=0,
                read_bytes=0,
                write_bytes=MiB,
            )
        )
    return out


def build_v2(root: Path, n_docker: int = 2, pid: int | None = None) -> list[FixtureContainer]:
    """Write a cgroup v2 tree at ``root``; ``pid``: the process listed in every container's
    ``cgroup.procs`` (for network counters), none by default."""
    _write(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    _write(root / "cgroup.subtree_control", "cpuset cpu io memory pids\n")
    _write(root / "cpu.stat", "usage_usec 999999999\n")
    for plain in ("init.scope", "system.slice/docker.service", "system.slice/containerd.service"):
        (root / plain).mkdir(parents=True, exist_ok=True)
        _write(root / plain / "cgroup.procs", "1\n")
    layout = v2_layout(n_docker)
    for c in layout:
        d = root / c.path
        if c.path.endswith("/container"):  # Podman 4+: the scope holds a "container" child
            _v2_files(d.parent, c, None)
            _v2_files(d, c, pid)
            continue
        _v2_files(d, c, pid)
    return layout


def build_v1(
    root: Path, n_docker: int = 2, copy_from: Path | None = None
) -> list[FixtureContainer]:
    """Write a cgroup v1 tree at ``root`` with ``n_docker`` Docker containers (cgroupfs driver).

    ``copy_from``: a real v1 memory cgroup directory whose ``memory.*`` files are copied into
    every container (their real formats and values, including the 2**63-ish "no limit")."""
    out = []
    for controller in ("cpu", "cpuacct", "cpuset", "memory", "blkio", "freezer", "pids"):
        _write(root / controller / "cgroup.procs", "1\n")
    for i in range(n_docker):
        cid = container_id(i)
        c = FixtureContainer(
            "docker",
            cid,
            f"docker/{cid}",
            cpu_usec=3_000_000 * (i + 1),
            memory=(200 + i) * MiB,
            limit=1024 * MiB,
            oom_kills=i,
            read_bytes=8 * MiB,
            write_bytes=3 * MiB,
            frozen=i == 1,
        )
        out.append(c)
        mem = root / "memory" / c.path
        mem.mkdir(parents=True, exist_ok=True)
        if copy_from is not None:
            for f in copy_from.iterdir():
                if f.name.startswith("memory.") and f.is_file():
                    try:
                        shutil.copyfile(f, mem / f.name)
                    except OSError:
                        continue  # write-only control files
        else:
            _write(mem / "memory.usage_in_bytes", f"{c.memory}\n")
            _write(mem / "memory.limit_in_bytes", f"{c.limit}\n")
            _write(
                mem / "memory.stat",
                f"cache {c.memory // 2}\nrss {c.memory // 2}\ninactive_file {c.memory // 8}\n"
                f"total_cache {c.memory // 2}\ntotal_inactive_file {c.memory // 4}\n",
            )
            _write(
                mem / "memory.oom_control",
                f"oom_kill_disable 0\nunder_oom 0\noom_kill {c.oom_kills}\n",
            )
        _write(mem / "cgroup.procs", "")
        _write(root / "cpuacct" / c.path / "cpuacct.usage", f"{c.cpu_usec * 1000}\n")
        _write(
            root / "blkio" / c.path / "blkio.throttle.io_service_bytes_recursive",
            f"8:0 Read {c.read_bytes}\n8:0 Write {c.write_bytes}\n8:0 Sync 0\n8:0 Async 0\n"
            f"8:0 Discard 0\n8:0 Total {c.read_bytes + c.write_bytes}\n"
            f"Total {c.read_bytes + c.write_bytes}\n",
        )
        _write(root / "freezer" / c.path / "freezer.state", "FROZEN\n" if c.frozen else "THAWED\n")
    return out
