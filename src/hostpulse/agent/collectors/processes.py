"""Processes: counts by status, all threads, and the top N by CPU and by memory.

Linux scans ``/proc/<pid>/stat`` only (one small read per process, through descriptors kept
open between collections, see ``pidfiles``) and looks at the owner and ``cmdline`` just for the
top-N winners; psutil is the fallback elsewhere.

CPU % is "percent of one core" over the time since the previous reading; for a process seen for
the first time (the first collection, or a process started since) it is its average over its
lifetime, which for a process younger than the interval is exactly its use since it started.
"""

from __future__ import annotations

import heapq
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import (
    add,
    current_platform,
    platform_unsupported,
    read_text,
)
from hostpulse.agent.collectors.base import ProcessInfo, Reading
from hostpulse.agent.collectors.cmdline import CmdlineMode
from hostpulse.agent.collectors.cmdline import render as render_cmdline
from hostpulse.agent.collectors.pidfiles import PidFileReader
from hostpulse.catalog import PROCESS_STATES

if sys.platform != "win32":
    import pwd

logger = logging.getLogger(__name__)

NAME = "processes"
STATUS_BY_CODE: dict[str, str] = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": "zombie",
    "X": "dead",
    "x": "dead",
    "I": "idle",
    "P": "parked",
}
_KNOWN_STATES = frozenset(PROCESS_STATES)
_STATE_LABELS = {s: (("state", s),) for s in PROCESS_STATES}


@dataclass(slots=True)
class _Proc:
    pid: int
    name: str
    status: str
    cpu_seconds: float
    threads: int
    rss_bytes: int
    started: float  # seconds since boot (Linux) or since the epoch (psutil)
    cpu_percent: float = 0.0


DETAILS_REFRESH = 4
"""Collections (15 s apart by default) between two reads of a listed process's owner and
command line; a process that rewrites its command line shows the new one within a minute."""


class ProcessCollector:
    name = NAME

    def __init__(
        self,
        *,
        top_n: int = 10,
        proc_root: str = "/proc",
        use_procfs: bool | None = None,
        user_name: Callable[[int], str] | None = None,
        refresh_every: int = 60,
        wall_clock: Callable[[], float] = time.time,
        max_open_files: int | None = None,
        cmdline: CmdlineMode = "redacted",
    ) -> None:
        """``cmdline``: what to report of each listed process's command line (full, redacted:
        secret-looking values masked, off: nothing); see :mod:`.cmdline`."""
        self._top_n = top_n
        self._cmdline = cmdline
        self._wall = wall_clock
        self._proc = proc_root
        self._procfs = sys.platform.startswith("linux") if use_procfs is None else use_procfs
        self._user_name = user_name or _user_name
        self._users: dict[int, str] = {}
        self._refresh_every = refresh_every
        self._calls = 0
        # (pid, start time) -> (user, name, command line, collection it was read at): the
        # listed processes' owner and command line are read again every DETAILS_REFRESH
        # collections, not every time (a third of this collector's CPU)
        self._known: dict[tuple[int, float], tuple[str, str, str, int]] = {}
        self._listed: set[tuple[int, float]] = set()
        self._mem_total = 0
        self._platform_unsupported = platform_unsupported(NAME, current_platform())
        if self._procfs:
            self._clk_tck = float(os.sysconf("SC_CLK_TCK"))
            self._page_size = os.sysconf("SC_PAGE_SIZE")
            self._stat_files = PidFileReader(proc_root, "stat", max_open_files)
        self._prev: dict[tuple[int, float], float] = {}  # (pid, start) -> cpu seconds
        self._prev_now: float | None = None

    def collect(self, now: float) -> Reading:
        reading = Reading(unsupported=set(self._platform_unsupported))
        if self._calls % self._refresh_every == 0 or not self._mem_total:
            try:
                self._mem_total = self._read_mem_total()
            except (OSError, ValueError, KeyError, psutil.Error) as exc:
                reading.errors.append(f"processes memory total: {exc}")
        self._calls += 1
        try:
            if self._procfs:
                procs, age_now = self._scan_linux(reading)
            else:
                procs, age_now = self._scan_psutil(reading)
        except (OSError, ValueError, psutil.Error) as exc:
            reading.errors.append(f"processes: {exc}")
            return reading
        self._cpu_percents(procs, now, age_now)
        counts = dict.fromkeys(PROCESS_STATES, 0)
        threads = 0
        for p in procs:
            counts[p.status if p.status in _KNOWN_STATES else "other"] += 1
            threads += p.threads
        for state, n in counts.items():
            add(reading, "processes_state", n, _STATE_LABELS[state])
        add(reading, "processes_all", len(procs))
        add(reading, "processes_threads", threads)
        n = self._top_n
        self._listed = set()
        cache: dict[int, ProcessInfo | None] = {}  # a process is often in both lists
        reading.top_cpu = self._details(
            heapq.nlargest(n, procs, key=lambda p: p.cpu_percent), reading, cache
        )
        reading.top_memory = self._details(
            heapq.nlargest(n, procs, key=lambda p: p.rss_bytes), reading, cache
        )
        self._known = {k: v for k, v in self._known.items() if k in self._listed}
        return reading

    # ----------------------------------------------------------------- cpu %
    def _cpu_percents(self, procs: list[_Proc], now: float, age_now: float) -> None:
        prev = self._prev
        elapsed = now - self._prev_now if self._prev_now is not None else 0.0
        current: dict[tuple[int, float], float] = {}
        for p in procs:
            key = (p.pid, p.started)
            current[key] = p.cpu_seconds
            before = prev.get(key)
            if before is not None and elapsed > 0:
                p.cpu_percent = max(0.0, p.cpu_seconds - before) / elapsed * 100.0
            else:
                age = age_now - p.started
                p.cpu_percent = p.cpu_seconds / age * 100.0 if age > 0 else 0.0
        if elapsed > 0 or self._prev_now is None:
            self._prev = current
            self._prev_now = now

    # ----------------------------------------------------------------- linux
    def _read_mem_total(self) -> int:
        if self._procfs:
            return procfs.parse_meminfo(read_text(f"{self._proc}/meminfo"))["MemTotal"]
        return int(psutil.virtual_memory().total)

    def _scan_linux(self, reading: Reading) -> tuple[list[_Proc], float]:
        proc = self._proc
        tck = self._clk_tck
        page = self._page_size
        status = STATUS_BY_CODE
        parse = procfs.parse_pid_stat
        uptime = float(read_text(f"{proc}/uptime").split()[0])
        read = self._stat_files.read
        out: list[_Proc] = []
        denied = 0
        entries = [e for e in os.listdir(proc) if e.isdigit()]
        self._stat_files.retain(entries)
        for entry in entries:
            try:
                data = read(entry)
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited since the directory listing: normal, not an error
            except PermissionError:  # hidepid=1: listed but not readable
                denied += 1
                continue
            except OSError as exc:
                reading.errors.append(f"process {entry}: {exc}")
                continue
            try:
                st = parse(data)
            except (ValueError, IndexError) as exc:  # an empty read from a zombie in exit
                reading.errors.append(f"process {entry}: unreadable stat ({exc})")
                continue
            out.append(
                _Proc(
                    pid=int(entry),
                    name=st.name,
                    status=status.get(st.state, "other"),
                    cpu_seconds=st.cpu_ticks / tck,
                    threads=st.threads,
                    started=st.start_ticks / tck,
                    rss_bytes=st.rss_pages * page,
                )
            )
        if denied:
            reading.errors.append(f"{denied} processes not readable (permission denied)")
        return out, uptime

    def _details(
        self, procs: Iterable[_Proc], reading: Reading, cache: dict[int, ProcessInfo | None]
    ) -> list[ProcessInfo]:
        out: list[ProcessInfo] = []
        for p in procs:
            if p.pid not in cache:
                cache[p.pid] = self._info(p, reading)
            info = cache[p.pid]
            if info is not None:
                out.append(info)
        return out

    def _info(self, p: _Proc, reading: Reading) -> ProcessInfo | None:
        key = (p.pid, p.started)
        known = self._known.get(key)
        if known is not None and self._calls - known[3] < DETAILS_REFRESH:
            user, name, cmdline = known[:3]
        else:
            try:
                user, argv = self._owner_and_argv(p.pid)
            except (FileNotFoundError, ProcessLookupError, psutil.NoSuchProcess):
                return None  # exited between the scan and now
            except (OSError, psutil.Error) as exc:
                reading.errors.append(f"process {p.pid}: {exc}")
                user, argv = "", []
            name = _full_name(p.name, argv[0] if argv else "")
            cmdline = render_cmdline(argv, self._cmdline)
            self._known[key] = (user, name, cmdline, self._calls)
        self._listed.add(key)
        return ProcessInfo(
            pid=p.pid,
            name=name,
            user=user,
            cpu_percent=round(p.cpu_percent, 2),
            mem_percent=round(p.rss_bytes / self._mem_total * 100.0, 2) if self._mem_total else 0.0,
            rss_bytes=p.rss_bytes,
            threads=p.threads,
            status=p.status,
            cmdline=cmdline,
        )

    def _owner_and_argv(self, pid: int) -> tuple[str, list[str]]:
        if not self._procfs:
            pp = psutil.Process(pid)
            with pp.oneshot():
                try:
                    user = str(pp.username())
                except (KeyError, psutil.AccessDenied):
                    user = ""
                try:
                    argv = [str(a) for a in pp.cmdline()]
                except psutil.AccessDenied:
                    argv = []
            return user, argv
        # The owner of /proc/<pid> is the process's effective UID (what ps shows as USER).
        user = self._user(os.stat(f"{self._proc}/{pid}").st_uid)
        try:
            with open(f"{self._proc}/{pid}/cmdline", "rb") as f:
                raw = f.read(65536)
        except PermissionError:  # hidepid
            raw = b""
        if not raw:
            return user, []
        return user, raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            name = self._users[uid] = self._user_name(uid)
        return name

    # ----------------------------------------------------------------- psutil
    def _scan_psutil(self, reading: Reading) -> tuple[list[_Proc], float]:
        out: list[_Proc] = []
        attrs = ["pid", "name", "status", "num_threads", "memory_info", "cpu_times", "create_time"]
        for pp in psutil.process_iter(attrs, ad_value=None):
            i = pp.info
            if i["create_time"] is None:
                continue  # vanished or inaccessible
            times = i["cpu_times"]
            mem = i["memory_info"]
            out.append(
                _Proc(
                    pid=i["pid"],
                    name=i["name"] or "",
                    status=i["status"] or "other",
                    cpu_seconds=(times.user + times.system) if times is not None else 0.0,
                    threads=i["num_threads"] or 0,
                    started=float(i["create_time"]),
                    rss_bytes=mem.rss if mem is not None else 0,
                )
            )
        return out, self._wall()


_COMM_MAX = 15  # the kernel truncates a process's name (comm) to 15 bytes


def _full_name(comm: str, argv0: str) -> str:
    """The untruncated executable name when the kernel cut comm short (as psutil does)."""
    if len(comm.encode()) < _COMM_MAX or not argv0:
        return comm
    base = argv0.split(" ", 1)[0].rsplit("/", 1)[-1]
    return base if base.startswith(comm) else comm


def _user_name(uid: int) -> str:
    """Only on the Linux path (psutil names users elsewhere); once per uid, then cached."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
