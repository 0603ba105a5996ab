"""The ``containers`` collector: the catalog's ``container_*`` metrics, one set per container.

Containers are the cgroups :mod:`.cgroups` recognises, at most ``max_containers`` of them
(engine containers before systemd services), so that a host with hundreds of short-lived
containers cannot flood the server with series. Network counters come from
``/proc/<pid>/net/dev`` of a process of the container, only when it has its own network
namespace (a systemd service or a ``--network host`` container shares the host's, which the
``network`` collector already reports). Names and images come from the engine API socket,
asked again when an unknown container appears and at most every ``api_refresh`` seconds
otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hostpulse import catalog
from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import add, read_text
from hostpulse.agent.collectors.base import Labels, Reading
from hostpulse.agent.collectors.containers.cgroups import Cgroup, CgroupReader, Stats
from hostpulse.agent.collectors.containers.engine_api import (
    DEFAULT_SOCKETS,
    EngineContainer,
    EngineError,
    list_containers,
)
from hostpulse.agent.rates import Counters

logger = logging.getLogger(__name__)

NAME = "containers"
KEYS = frozenset(m.key for m in catalog.for_collector(NAME))

Lister = Callable[[str, float], list[EngineContainer]]


@dataclass(frozen=True, slots=True)
class _Labels:
    """One container's labels, with its two states, and its key for the rate counters."""

    engine: EngineContainer | None
    labels: Labels
    running: Labels
    paused: Labels
    key: tuple[str]


class ContainerCollector:
    name = NAME

    def __init__(
        self,
        *,
        cgroup_root: str = "/sys/fs/cgroup",
        proc_root: str = "/proc",
        sockets: Sequence[str] = DEFAULT_SOCKETS,
        systemd_services: bool = False,
        max_containers: int = 100,
        api_refresh: float = 60.0,
        api_timeout: float = 2.0,
        rediscover: float = 30.0,
        lister: Lister = list_containers,
    ) -> None:
        """``rediscover``: seconds between walks of the cgroup tree for new containers (a
        container that goes away drops out at once)."""
        self._linux = sys.platform.startswith("linux") or cgroup_root != "/sys/fs/cgroup"
        self._cgroups = CgroupReader(cgroup_root, systemd_services=systemd_services)
        self._proc = proc_root
        self._sockets = tuple(sockets)
        self._max = max_containers
        self._api_refresh = api_refresh
        self._api_timeout = api_timeout
        self._lister = lister
        self._engine: dict[str, tuple[EngineContainer, str]] = {}  # id -> (it, runtime)
        self._engine_at: float | None = None
        self._engine_failed: set[str] = set()
        self._rediscover = rediscover
        self._found: list[Cgroup] = []
        self._found_at: float | None = None
        self._cpu = Counters()
        self._net_rx = Counters()
        self._net_tx = Counters()
        self._reads = Counters()
        self._writes = Counters()
        self._host_netns = self._netns("self")
        self._label_sets: dict[str, _Labels] = {}  # by cgroup path

    def collect(self, now: float) -> Reading:
        reading = Reading()
        if not self._linux or self._cgroups.version is None:
            reading.unsupported |= KEYS
            return reading
        if self._found_at is None or now - self._found_at >= self._rediscover:
            try:
                self._found = self._cgroups.discover()
            except OSError as exc:
                reading.errors.append(f"containers: {exc}")
                reading.unsupported |= KEYS
                return reading
            self._found_at = now
        found = self._found
        if len(found) > self._max:
            reading.errors.append(
                f"containers: {len(found)} found, reporting the first {self._max} "
                "(containers.max_containers)"
            )
            found = found[: self._max]
        self._refresh_engine(found, now)
        self._live: set[tuple[str, ...]] = set()
        seen: set[str] = set()
        gone: list[Cgroup] = []
        label_sets = self._label_sets
        self._label_sets = {}
        for cg in found:
            stats = self._cgroups.read(cg)
            if stats.cpu_seconds is None and stats.memory_bytes is None and self._gone(cg):
                gone.append(cg)
                continue
            reading.errors.extend(stats.errors)
            cached = label_sets.get(cg.path)
            if cached is not None:
                self._label_sets[cg.path] = cached
            self._add(reading, cg, self._labels(cg), stats, now)
            seen.add(cg.id)
        if gone:
            self._found = [cg for cg in self._found if cg not in gone]
        for c, runtime in self._engine.values():  # stopped containers: a state, no cgroup
            if c.id in seen or c.state in ("running", "paused") or len(seen) >= self._max:
                continue
            seen.add(c.id)
            short = c.id[:12]
            labels = (("id", short), ("name", c.name or short), ("image", c.image))
            state = (("state", c.state or "exited"),)
            add(reading, "container_state", 1, (*labels, ("runtime", runtime), *state))
        for counters in (self._cpu, self._net_rx, self._net_tx, self._reads, self._writes):
            counters.retain(self._live)  # forget removed containers
        self._cgroups.sweep()  # and close their files
        present = {s.key for s in reading.samples}
        reading.unsupported |= KEYS - present
        return reading

    # ---------------------------------------------------------------- helpers
    def _labels(self, cg: Cgroup) -> _Labels:
        """The container's label sets, made again only when the engine's answer for it changed
        (the same tuples each collection also make the snapshot's series table compare fast)."""
        e = self._engine.get(cg.id, (None, ""))[0]
        cached = self._label_sets.get(cg.path)
        if cached is not None and cached.engine is e:
            return cached
        labels: Labels = (
            ("id", cg.short_id),
            ("name", (e.name if e and e.name else cg.short_id)),
            ("image", e.image if e else ""),
            ("runtime", cg.runtime),
        )
        made = _Labels(
            e, labels, (*labels, ("state", "running")), (*labels, ("state", "paused")), (cg.id,)
        )
        self._label_sets[cg.path] = made
        return made

    def _add(self, r: Reading, cg: Cgroup, sets: _Labels, s: Stats, now: float) -> None:
        labels, key = sets.labels, sets.key
        if s.cpu_seconds is not None:
            add(r, "container_cpu_usage_seconds", s.cpu_seconds, labels)
            rate = self._rate(self._cpu, key, s.cpu_seconds, now)
            if rate is not None:
                add(r, "container_cpu_usage_percent", rate * 100.0, labels)
        for name, value in (
            ("container_memory_usage_bytes", s.memory_bytes),
            ("container_memory_working_set_bytes", s.working_set_bytes),
            ("container_spec_memory_limit_bytes", s.memory_limit_bytes),
            ("container_oom_events", s.oom_kills),
        ):
            if value is not None:
                add(r, name, value, labels)
        for name, value, counters in (
            ("container_fs_reads_bytes", s.read_bytes, self._reads),
            ("container_fs_writes_bytes", s.write_bytes, self._writes),
        ):
            if value is not None:
                add(r, name, value, labels)
                rate = self._rate(counters, key, value, now)
                if rate is not None:
                    add(r, name + "_per_second", rate, labels)
        if s.pid is not None:
            self._network(r, cg, labels, s.pid, now)
        add(r, "container_state", 1, sets.paused if s.paused else sets.running)

    def _gone(self, cg: Cgroup) -> bool:
        tree = self._cgroups.tree
        return tree is None or not os.path.isdir(os.path.join(tree, cg.path))

    def _rate(
        self, counters: Counters, key: tuple[str, ...], value: float, now: float
    ) -> float | None:
        self._live.add(key)
        return counters.rate(key, value, now)

    def _netns(self, pid: str) -> int | None:
        try:
            return os.stat(f"{self._proc}/{pid}/ns/net").st_ino
        except OSError:
            return None

    def _network(self, r: Reading, cg: Cgroup, labels: Labels, pid: int, now: float) -> None:
        ns = self._netns(str(pid))
        if ns is None or ns == self._host_netns:
            return  # the host's namespace (or not ours to look at): no per-container traffic
        try:
            devices = procfs.parse_net_dev(read_text(f"{self._proc}/{pid}/net/dev"))
        except OSError:
            return  # the process exited between the two reads
        for iface, d in devices.items():
            if iface == "lo":
                continue
            with_if = (*labels, ("interface", iface))
            for key, value, counters in (
                ("container_network_receive_bytes", d.rx_bytes, self._net_rx),
                ("container_network_transmit_bytes", d.tx_bytes, self._net_tx),
            ):
                add(r, key, value, with_if)
                rate = self._rate(counters, (cg.id, iface), value, now)
                if rate is not None:
                    add(r, key + "_per_second", rate, with_if)

    def _refresh_engine(self, found: list[Cgroup], now: float) -> None:
        last = self._engine_at
        due = last is None or now - last >= self._api_refresh
        if not due and last is not None and now - last >= 5.0:
            # a container the engine has not named yet: ask again (at most every 5 s)
            due = any(c.id not in self._engine for c in found if c.runtime in ("docker", "podman"))
        if not due:
            return
        self._engine_at = now
        merged: dict[str, tuple[EngineContainer, str]] = {}
        for path in self._sockets:
            if not os.path.exists(path):
                continue
            try:
                runtime = "podman" if "podman" in path else "docker"
                for c in self._lister(path, self._api_timeout):
                    merged[c.id] = (c, runtime)
            except OSError as exc:  # EngineError too
                if path not in self._engine_failed:
                    self._engine_failed.add(path)
                    logger.warning("container names unavailable from %s: %s", path, exc)
                continue
            self._engine_failed.discard(path)
        self._engine = merged


__all__ = ["ContainerCollector", "EngineError"]
