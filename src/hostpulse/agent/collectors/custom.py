"""Custom metrics: node_exporter textfile-collector files and exec plugins.

* **Textfiles**: every ``*.prom`` file in ``custom.textfile_dir``, in the Prometheus text format
  (what cron jobs write for node_exporter's textfile collector; write to a temporary file and
  rename it, so the agent never reads half a file).
* **Exec plugins**: ``custom.exec`` maps a name to a command (run without a shell) that prints
  the same format; each runs at most every ``exec_interval`` seconds and is killed after
  ``exec_timeout``. The last good output is kept between runs.

Each sample becomes the series ``custom:<metric name>`` with its labels (sorted by name). Bounds,
so that a runaway script cannot flood the agent or the server: ``max_series`` per host,
``max_labels`` per series, label values and names up to ``MAX_LABEL_VALUE`` /
``MAX_NAME`` characters, files and outputs up to ``MAX_BYTES``. A line that is not valid, or
breaks a bound, or takes the name of one of the agent's own metrics (``node_cpu_load1``), is
logged with its text (once per distinct problem) and skipped; the rest of the file is used.
Lines are parsed one at a time (``promtext.py``).
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hostpulse import catalog
from hostpulse.agent.collectors._common import add
from hostpulse.agent.collectors.base import Labels, Reading, Sample
from hostpulse.agent.collectors.promtext import parse_sample

logger = logging.getLogger(__name__)

NAME = "custom"
PREFIX = "custom:"
MAX_BYTES = 1 << 20
MAX_NAME = 200
MAX_LABEL_VALUE = 256
MAX_LOGGED_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class Parsed:
    samples: list[tuple[str, Labels, float]]
    problems: list[str]


def parse_text(text: str, source: str, max_labels: int = 16) -> Parsed:
    """Samples of Prometheus text ``text``; ``problems`` name ``source``, the line number and
    the line."""
    samples: list[tuple[str, Labels, float]] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue

        def bad(why: str, number: int = number, line: str = line) -> None:
            problems.append(f"{source}:{number}: {why}: {line[:300]!r}")

        try:
            name, found, value = parse_sample(stripped)
        except ValueError as exc:
            bad(f"not Prometheus text ({exc})")
            continue
        if len(name) > MAX_NAME:
            bad(f"metric name longer than {MAX_NAME}")
        elif name in _builtin_names():
            bad("the name of one of the agent's own metrics (it would break /metrics)")
        elif len(found) > max_labels:
            bad(f"more than {max_labels} labels")
        elif any(len(v) > MAX_LABEL_VALUE or len(k) > MAX_NAME for k, v in found.items()):
            bad(f"a label longer than {MAX_LABEL_VALUE}")
        elif not math.isfinite(value):
            bad("value is not a finite number")
        else:
            samples.append((PREFIX + name, tuple(sorted(found.items())), value))
    return Parsed(samples, problems)


@functools.cache
def _builtin_names() -> frozenset[str]:
    """The exporter's names of the catalog's metrics: a custom sample named like one of them
    would give ``/metrics`` a second HELP/TYPE for the name, and Prometheus would reject the
    whole scrape."""
    return frozenset(m.prom_name for m in catalog.METRICS)


Runner = Callable[[list[str], float], bytes]


def _run(argv: list[str], timeout: float) -> bytes:
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OSError(f"exit status {done.returncode}" + (f": {err[-1][:200]}" if err else ""))
    return done.stdout[: MAX_BYTES + 1]


class CustomCollector:
    name = NAME

    def __init__(
        self,
        *,
        textfile_dir: str | None = None,
        exec_commands: Mapping[str, str] | None = None,
        exec_interval: float = 60.0,
        exec_timeout: float = 10.0,
        max_series: int = 1000,
        max_labels: int = 16,
        clock: Callable[[], float] = time.monotonic,
        run: Runner = _run,
    ) -> None:
        self._dir = textfile_dir
        self._commands = {k: shlex.split(v) for k, v in (exec_commands or {}).items()}
        self._exec_interval = exec_interval
        self._exec_timeout = exec_timeout
        self._max_series = max_series
        self._max_labels = max_labels
        self._clock = clock
        self._run = run
        self._plugin_at: dict[str, float] = {}
        self._plugin_last: dict[str, Parsed] = {}
        self._logged: set[str] = set()
        self._files: dict[str, tuple[int, int, Parsed]] = {}  # path -> (mtime_ns, size, parsed)
        # the parsed inputs of the last collection and what it made of them
        self._last: tuple[list[Parsed], list[Sample], list[str]] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._dir or self._commands)

    def collect(self, now: float) -> Reading:
        reading = Reading()
        parsed: list[Parsed] = []
        if self._dir:
            parsed += self._textfiles(reading)
        for name, argv in sorted(self._commands.items()):
            parsed.append(self._plugin(name, argv, reading))
        last = self._last
        before = len(reading.errors)  # problems of reading the files, new each time
        if (
            last is not None
            and len(last[0]) == len(parsed)
            and all(map(operator.is_, last[0], parsed))
        ):
            # nothing changed since the last collection (the same parsed files and outputs):
            # the same samples and problems, without checking each sample again
            reading.samples.extend(last[1])
            reading.errors.extend(last[2])
            return reading
        seen: set[tuple[str, Labels]] = set()
        dropped = 0
        for p in parsed:
            self._problems(p.problems, reading)
            for key, labels, value in p.samples:
                if (key, labels) in seen:
                    self._problems([f"duplicate series {key}{dict(labels)} skipped"], reading)
                    continue
                if len(seen) >= self._max_series:
                    dropped += 1
                    continue
                seen.add((key, labels))
                add(reading, key, value, labels)
        if dropped:
            self._problems(
                [f"custom metrics: {dropped} series over custom.max_series ({self._max_series})"],
                reading,
            )
        self._last = (parsed, list(reading.samples), reading.errors[before:])
        return reading

    def _problems(self, problems: list[str], reading: Reading) -> None:
        for p in problems:
            reading.errors.append(p)
            if p not in self._logged and len(self._logged) < MAX_LOGGED_PROBLEMS:
                self._logged.add(p)
                logger.warning("%s", p)

    def _textfiles(self, reading: Reading) -> list[Parsed]:
        assert self._dir is not None
        out: list[Parsed] = []
        try:
            names = sorted(n for n in os.listdir(self._dir) if n.endswith(".prom"))
        except OSError as exc:
            self._problems([f"custom.textfile_dir {self._dir}: {exc.strerror}"], reading)
            return out
        files: dict[str, tuple[int, int, Parsed]] = {}
        for n in names:
            path = os.path.join(self._dir, n)
            try:
                st = os.stat(path)
                cached = self._files.get(path)
                if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
                    files[path] = cached  # unchanged since the last collection: not re-parsed
                    out.append(cached[2])
                    continue
                with open(path, "rb") as f:
                    data = f.read(MAX_BYTES + 1)
            except OSError as exc:
                self._problems([f"{path}: {exc.strerror}"], reading)
                continue
            if len(data) > MAX_BYTES:
                self._problems([f"{path}: larger than {MAX_BYTES} bytes, skipped"], reading)
                continue
            parsed = parse_text(data.decode("utf-8", "replace"), path, self._max_labels)
            files[path] = (st.st_mtime_ns, st.st_size, parsed)
            out.append(parsed)
        self._files = files
        return out

    def _plugin(self, name: str, argv: list[str], reading: Reading) -> Parsed:
        now = self._clock()
        last_run = self._plugin_at.get(name)
        if last_run is not None and now - last_run < self._exec_interval:
            return self._plugin_last.get(name, Parsed([], []))
        self._plugin_at[name] = now
        source = f"exec plugin {name}"
        try:
            data = self._run(argv, self._exec_timeout)
        except subprocess.TimeoutExpired:
            self._problems([f"{source}: killed after {self._exec_timeout:g} s"], reading)
            return self._plugin_last.get(name, Parsed([], []))
        except OSError as exc:
            self._problems([f"{source}: {exc.strerror or exc}"], reading)
            return self._plugin_last.get(name, Parsed([], []))
        if len(data) > MAX_BYTES:
            self._problems([f"{source}: output larger than {MAX_BYTES} bytes"], reading)
            return self._plugin_last.get(name, Parsed([], []))
        result = parse_text(data.decode("utf-8", "replace"), source, self._max_labels)
        self._plugin_last[name] = Parsed(result.samples, [])  # problems reported once per run
        return result
