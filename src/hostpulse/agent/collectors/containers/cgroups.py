"""Find containers in the cgroup hierarchy and read their counters.

Where containers live (the layouts of real hosts):

* cgroup v2, systemd driver: ``system.slice/docker-<id>.scope``,
  ``machine.slice/libpod-<id>.scope`` (Podman as root),
  ``user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope`` (rootless),
  ``kubepods.slice/kubepods-burstable.slice/.../cri-containerd-<id>.scope`` or ``crio-<id>.scope``,
  ``system.slice/<unit>.service`` (systemd services);
* cgroupfs driver (v1 and v2): ``docker/<id>``, ``libpod_parent/libpod-<id>``,
  ``kubepods/burstable/pod<uid>/<id>``, ``<containerd namespace>/<id>`` (nerdctl: ``default``).

cgroup v2 has one tree (``cpu.stat``, ``memory.current``, ``io.stat`` ...); v1 has one tree per
controller (``cpuacct/…/cpuacct.usage``, ``memory/…/memory.usage_in_bytes``, ``blkio/…``) with
the same relative paths, found through the memory tree. A file that is missing or unreadable
leaves its metric out for that container; it never stops the others.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from hostpulse.agent.collectors.pidfiles import OpenFiles, default_max_open

V1_UNLIMITED = 1 << 62  # memory.limit_in_bytes of "no limit" is 2**63 rounded down to a page
MAX_DEPTH = 8

_ID = r"[0-9a-f]{64}"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^docker-({_ID})\.scope$"), "docker"),
    (re.compile(rf"^libpod-({_ID})\.scope$"), "podman"),
    (re.compile(rf"^libpod-({_ID})$"), "podman"),
    (re.compile(rf"^cri-containerd-({_ID})\.scope$"), "containerd"),
    (re.compile(rf"^crio-({_ID})\.scope$"), "crio"),
)
_BARE_ID = re.compile(rf"^({_ID})$")
_BARE_PARENTS = {"docker": "docker", "libpod_parent": "podman"}
_SERVICE = re.compile(r"^([A-Za-z0-9@:._\\-]+\.service)$")


@dataclass(frozen=True, slots=True)
class Cgroup:
    """One container's cgroup: ``path`` relative to the hierarchy root."""

    runtime: str
    id: str
    """The full ID (64 hex digits) or the systemd unit name."""
    path: str

    @property
    def short_id(self) -> str:
        return self.id[:12] if self.runtime != "systemd" else self.id


@dataclass(slots=True)
class Stats:
    cpu_seconds: float | None = None
    memory_bytes: float | None = None
    working_set_bytes: float | None = None
    memory_limit_bytes: float | None = None
    oom_kills: float | None = None
    read_bytes: float | None = None
    write_bytes: float | None = None
    paused: bool = False
    pid: int | None = None
    errors: list[str] = field(default_factory=list)


def _classify(parts: list[str], systemd_services: bool) -> tuple[str, str] | None:
    name = parts[-1]
    for pattern, runtime in _PATTERNS:
        m = pattern.match(name)
        if m:
            return runtime, m.group(1)
    bare = _BARE_ID.match(name)
    if bare and len(parts) >= 2:
        if parts[0] == "kubepods" or parts[0].startswith("kubepods"):
            return "containerd", bare.group(1)
        return _BARE_PARENTS.get(parts[-2], "containerd"), bare.group(1)
    if systemd_services and len(parts) == 2 and parts[0] == "system.slice":
        m = _SERVICE.match(name)
        if m:
            return "systemd", m.group(1)
    return None


class CgroupReader:
    """The containers under ``root`` (``/sys/fs/cgroup``) and their counters."""

    def __init__(
        self,
        root: str = "/sys/fs/cgroup",
        *,
        systemd_services: bool = False,
        max_open: int | None = None,
    ) -> None:
        self.root = root
        self.systemd_services = systemd_services
        # a quarter of the descriptor limit, like the process collector's /proc/<pid>/stat files
        self._files = OpenFiles(default_max_open() if max_open is None else max_open)
        self.version = self._detect()
        self._v1: dict[str, str] = {}
        if self.version == 1:
            for controller, names in (
                ("memory", ("memory",)),
                ("cpuacct", ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")),
                ("blkio", ("blkio",)),
                ("freezer", ("freezer",)),
            ):
                for n in names:
                    if os.path.isdir(os.path.join(root, n)):
                        self._v1[controller] = os.path.join(root, n)
                        break

    def _detect(self) -> int | None:
        if os.path.exists(os.path.join(self.root, "cgroup.controllers")):
            return 2
        if os.path.isdir(os.path.join(self.root, "memory")) or os.path.isdir(
            os.path.join(self.root, "cpuacct")
        ):
            return 1
        return None

    @property
    def tree(self) -> str | None:
        """The hierarchy containers are looked for in."""
        if self.version == 2:
            return self.root
        if self.version == 1:
            return self._v1.get("memory") or self._v1.get("cpuacct")
        return None

    def discover(self) -> list[Cgroup]:
        tree = self.tree
        if tree is None:
            return []
        found: list[Cgroup] = []
        base_depth = tree.rstrip("/").count("/")
        for dirpath, dirnames, _files in os.walk(tree):
            rel = os.path.relpath(dirpath, tree)
            if rel == ".":
                continue
            parts = rel.split(os.sep)
            hit = _classify(parts, self.systemd_services)
            if hit is not None:
                found.append(Cgroup(hit[0], hit[1], rel))
                dirnames[:] = []  # a container's own sub-cgroups belong to it
            elif dirpath.count("/") - base_depth >= MAX_DEPTH:
                dirnames[:] = []
        found.sort(key=lambda c: (c.runtime == "systemd", c.path))
        return found

    def sweep(self) -> None:
        """End of a collection: close the files of cgroups that were not read in it."""
        self._files.sweep()

    @property
    def open_files(self) -> int:
        return len(self._files)

    def read(self, cg: Cgroup) -> Stats:
        tree = self.tree
        if tree is None or not _is_dir(tree + "/" + cg.path):
            # gone (its files kept open may still read on a filesystem other than cgroupfs)
            return Stats()
        try:
            return self._read_v2(cg) if self.version == 2 else self._read_v1(cg)
        except ValueError as exc:  # a malformed io.stat / blkio line
            return Stats(errors=[f"{cg.path}: {exc}"])

    # ------------------------------------------------------------------ v2
    def _read_v2(self, cg: Cgroup) -> Stats:
        d = self.root + "/" + cg.path
        s = Stats()
        cpu = _keyed(self._files, d, "cpu.stat", s, ("usage_usec",))
        if "usage_usec" in cpu:
            s.cpu_seconds = cpu["usage_usec"] / 1e6
        s.memory_bytes = _number(self._files, d, "memory.current", s)
        mstat = _keyed(self._files, d, "memory.stat", s, ("inactive_file",))
        if s.memory_bytes is not None and "inactive_file" in mstat:
            s.working_set_bytes = max(0.0, s.memory_bytes - mstat["inactive_file"])
        limit = _number(self._files, d, "memory.max", s, unlimited="max")
        if limit is not None:
            s.memory_limit_bytes = limit
        events = _keyed(self._files, d, "memory.events", s, ("oom_kill",))
        if "oom_kill" in events:
            s.oom_kills = events["oom_kill"]
        io = _text(self._files, d, "io.stat", s)
        if io is not None:
            s.read_bytes, s.write_bytes = _io_stat(io)
        s.paused = _keyed(self._files, d, "cgroup.events", s, ("frozen",)).get("frozen") == 1
        s.pid = _first_pid(self._files, d, s)
        return s

    # ------------------------------------------------------------------ v1
    def _read_v1(self, cg: Cgroup) -> Stats:
        s = Stats()
        mem = self._v1.get("memory")
        if mem is not None:
            d = os.path.join(mem, cg.path)
            s.memory_bytes = _number(self._files, d, "memory.usage_in_bytes", s)
            mstat = _keyed(
                self._files, d, "memory.stat", s, ("total_inactive_file", "inactive_file")
            )
            inactive = mstat.get("total_inactive_file", mstat.get("inactive_file"))
            if s.memory_bytes is not None and inactive is not None:
                s.working_set_bytes = max(0.0, s.memory_bytes - inactive)
            limit = _number(self._files, d, "memory.limit_in_bytes", s)
            if limit is not None and limit < V1_UNLIMITED:
                s.memory_limit_bytes = limit
            oom = _keyed(self._files, d, "memory.oom_control", s, ("oom_kill",))
            if "oom_kill" in oom:
                s.oom_kills = oom["oom_kill"]
            s.pid = _first_pid(self._files, d, s)
        cpu = self._v1.get("cpuacct")
        if cpu is not None:
            ns = _number(self._files, os.path.join(cpu, cg.path), "cpuacct.usage", s)
            s.cpu_seconds = ns / 1e9 if ns is not None else None
        blkio = self._v1.get("blkio")
        if blkio is not None:
            d = os.path.join(blkio, cg.path)
            text = _text(self._files, d, "blkio.throttle.io_service_bytes_recursive", s, quiet=True)
            if text is None:
                text = _text(self._files, d, "blkio.throttle.io_service_bytes", s)
            if text is not None:
                s.read_bytes, s.write_bytes = _blkio(text)
        freezer = self._v1.get("freezer")
        if freezer is not None:
            state = _text(
                self._files, os.path.join(freezer, cg.path), "freezer.state", s, quiet=True
            )
            s.paused = state is not None and state.strip() == "FROZEN"
        return s


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _text(files: OpenFiles, d: str, name: str, s: Stats, *, quiet: bool = False) -> str | None:
    path = d + "/" + name
    try:
        return files.read(path).decode("ascii", "replace")
    except FileNotFoundError:
        return None  # the controller is not enabled for this cgroup, or the container is gone
    except OSError as exc:
        if not quiet:
            s.errors.append(f"{path}: {exc.strerror}")
        return None


def _number(
    files: OpenFiles, d: str, name: str, s: Stats, unlimited: str | None = None
) -> float | None:
    text = _text(files, d, name, s)
    if text is None or text.strip() == unlimited:
        return None
    try:
        return float(text)
    except ValueError:
        s.errors.append(f"{d}/{name}: not a number")
        return None


def _keyed(
    files: OpenFiles, d: str, name: str, s: Stats, wanted: tuple[str, ...]
) -> dict[str, float]:
    """The ``wanted`` keys of a ``key value`` file (cpu.stat, memory.stat, memory.events)."""
    text = _text(files, d, name, s)
    out: dict[str, float] = {}
    if not text:
        return out
    for key in wanted:
        at = text.find(key + " ")
        while at > 0 and text[at - 1] != "\n":  # "inactive_file" inside "total_inactive_file"
            at = text.find(key + " ", at + 1)
        if at < 0:
            continue
        end = text.find("\n", at)
        try:
            out[key] = float(text[at + len(key) + 1 : end if end >= 0 else None])
        except ValueError:
            continue
    return out


def _first_pid(files: OpenFiles, d: str, s: Stats) -> int | None:
    text = _text(files, d, "cgroup.procs", s, quiet=True)
    if not text:
        return None
    first = text.split("\n", 1)[0].strip()
    return int(first) if first.isdigit() else None


_RBYTES = re.compile(r"\brbytes=(\d+)")
_WBYTES = re.compile(r"\bwbytes=(\d+)")


def _io_stat(text: str) -> tuple[float, float]:
    """Sum of ``rbytes=`` and ``wbytes=`` over the devices of an io.stat file."""
    return (
        float(sum(map(int, _RBYTES.findall(text)))),
        float(sum(map(int, _WBYTES.findall(text)))),
    )


def _blkio(text: str) -> tuple[float, float]:
    """Sum of ``<dev> Read N`` / ``<dev> Write N`` lines of blkio.throttle.io_service_bytes."""
    read = write = 0.0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue  # "Total N"
        if fields[1] == "Read":
            read += float(fields[2])
        elif fields[1] == "Write":
            write += float(fields[2])
    return read, write
