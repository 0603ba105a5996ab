"""The agent's collectors, registered explicitly (no folder scanning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hostpulse.agent.collectors.base import Collector
from hostpulse.agent.collectors.cmdline import CmdlineMode
from hostpulse.agent.collectors.connections import ConnectionsCollector
from hostpulse.agent.collectors.cpu import CpuCollector
from hostpulse.agent.collectors.disk import DiskIOCollector, DiskUsageCollector
from hostpulse.agent.collectors.gpu import GpuCollector
from hostpulse.agent.collectors.memory import MemoryCollector
from hostpulse.agent.collectors.network import NetworkCollector
from hostpulse.agent.collectors.processes import ProcessCollector
from hostpulse.agent.collectors.sensors import SensorsCollector
from hostpulse.agent.collectors.system import SystemCollector

if TYPE_CHECKING:
    from hostpulse.agent.config import ContainerSettings, CustomSettings

__all__ = [
    "ConnectionsCollector",
    "CpuCollector",
    "DiskIOCollector",
    "DiskUsageCollector",
    "GpuCollector",
    "MemoryCollector",
    "NetworkCollector",
    "ProcessCollector",
    "SensorsCollector",
    "SystemCollector",
    "build_collectors",
]


def build_collectors(
    *,
    top_n: int = 10,
    proc_root: str = "/proc",
    sys_root: str = "/sys",
    rootfs: str = "/",
    cmdline: CmdlineMode = "redacted",
    containers: ContainerSettings | None = None,
    custom: CustomSettings | None = None,
) -> list[Collector]:
    """One fresh (stateful) instance of each system collector (the catalog's cpu ... system).

    The agent's own metrics (delivery, spool) are collected elsewhere. ``rootfs`` other than
    ``/``: the host's root filesystem is mounted there (an agent in a container); filesystems
    are then those of the host's init (``<proc_root>/1/mountinfo``).
    """
    collectors: list[Collector] = [
        CpuCollector(proc_root=proc_root, sys_root=sys_root),
        MemoryCollector(proc_root=proc_root),
        DiskUsageCollector(proc_root=proc_root, rootfs=rootfs),
        DiskIOCollector(proc_root=proc_root, sys_root=sys_root),
        NetworkCollector(proc_root=proc_root, sys_root=sys_root),
        ConnectionsCollector(proc_root=proc_root),
        ProcessCollector(top_n=top_n, proc_root=proc_root, cmdline=cmdline),
        SystemCollector(proc_root=proc_root, rootfs=rootfs),
        SensorsCollector(),
        GpuCollector(),
    ]
    if containers is not None and containers.enabled:
        from hostpulse.agent.collectors.containers.collector import ContainerCollector

        collectors.append(
            ContainerCollector(
                cgroup_root=_under(containers.cgroup_root, "/sys", sys_root),
                proc_root=proc_root,
                sockets=containers.socket_paths(),
                systemd_services=containers.systemd_services,
                max_containers=containers.max_containers,
            )
        )
    if custom is not None and (custom.textfile_dir or custom.plugins):
        from hostpulse.agent.collectors.custom import CustomCollector

        collectors.append(
            CustomCollector(
                textfile_dir=custom.textfile_dir,
                exec_commands=custom.plugins,
                exec_interval=custom.plugin_interval,
                exec_timeout=custom.plugin_timeout,
                max_series=custom.max_series,
                max_labels=custom.max_labels,
            )
        )
    return collectors


def _under(path: str, default_root: str, root: str) -> str:
    """``path`` moved from ``default_root`` to ``root`` (``/sys/fs/cgroup`` -> ``/host/sys/fs/
    cgroup``), unchanged when it is not under ``default_root`` or ``root`` is the default."""
    if root == default_root or not (path + "/").startswith(default_root + "/"):
        return path
    return root + path[len(default_root) :]
