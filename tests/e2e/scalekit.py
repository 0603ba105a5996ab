"""The scaled-out system as real processes on loopback, for the whole-system test
(tests/e2e/test_scale_out.py) and the scale-out benchmark (bench/scale_out.py): a real Debian
``victoria-metrics`` with its own data directory, ``hostpulse server`` replicas on one
PostgreSQL database and one Redis database number, and Debian's ``haproxy`` in front of them
with the shipped ``deploy/haproxy/haproxy.cfg`` (its replica list and listen port written
for this run). Every process is started with its own log file and stopped by its PID; every
wait is bounded."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = "/usr/sbin/haproxy"
VICTORIA_METRICS = "/usr/bin/victoria-metrics"
HOSTPULSE = str(Path(sys.executable).with_name("hostpulse"))
START_TIMEOUT_S = 90.0  # three replicas starting at once on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any HOSTPULSE_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def answers(url: str, status: int = 200, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == status
    except httpx.HTTPError:
        return False


class Proc:
    """A child process writing to its own log file; stopped by its PID, never by name."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env if env is not None else clean_env(),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is flushed or closed) and reap."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit status."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

    def __enter__(self) -> Proc:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class VictoriaMetrics(Proc):
    """Debian's single-node VictoriaMetrics on a free loopback port with its own data
    directory. ``-search.latencyOffset=0s``: queries see samples up to now (the default hides
    the newest 30 s). ``-dedup.minScrapeInterval=1ms``: a sample sent twice (an agent resends
    what it has not seen acknowledged) is kept once, as docs/scale-out.md tells operators to run
    it."""

    def __enter__(self) -> VictoriaMetrics:
        return self

    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [
                VICTORIA_METRICS,
                f"-storageDataPath={data}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-dedup.minScrapeInterval=1ms",
                "-selfScrapeInterval=0",
                "-loggerLevel=WARN",
            ],
            log,
        )
        wait_until(lambda: self._up(), START_TIMEOUT_S, "VictoriaMetrics /health")

    def _up(self) -> bool:
        assert self.alive, "victoria-metrics exited:\n" + self.tail()
        return answers(f"{self.url}/health")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every raw sample of the series matching ``match`` (``/api/v1/export``: one JSON
        object per series with ``metric``, ``values`` and ``timestamps``), after a flush so
        that what was just written is searchable."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=60).raise_for_status()
        r = httpx.post(f"{self.url}/api/v1/export", data={"match[]": match}, timeout=120)
        r.raise_for_status()
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def haproxy_config(template: str, listen_port: int, replicas: Iterable[int], inter: str) -> str:
    """The shipped haproxy.cfg for replicas on loopback ports: ``bind :8400`` becomes the
    loopback port, the Compose ``server-template`` line (DNS service discovery) one ``server``
    line per replica as the file's header tells operators outside Compose, and the health
    check interval ``inter`` (the shipped 2 s; a test may shorten it)."""
    servers = "\n".join(
        f"    server replica{i} 127.0.0.1:{port} check" for i, port in enumerate(replicas, 1)
    )
    text, n = re.subn(r"^\s*server-template .*$", servers, template, flags=re.M)
    assert n == 1, "deploy/haproxy/haproxy.cfg has no server-template line to replace"
    text, n = re.subn(r"^(\s*bind )\S+", rf"\g<1>127.0.0.1:{listen_port}", text, flags=re.M)
    assert n == 1, "deploy/haproxy/haproxy.cfg has no bind line to replace"
    text, n = re.subn(r"\binter \S+", f"inter {inter}", text)
    assert n == 1, "deploy/haproxy/haproxy.cfg has no health-check interval to replace"
    # haproxy needs two descriptors per connection: the shipped maxconn wants a higher open
    # file limit than a test process may have (a host's haproxy.service sets its own)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    maxconn = max(100, (hard if hard != resource.RLIM_INFINITY else 65536) // 2 - 100)
    text = re.sub(
        r"^(\s*maxconn )(\d+)", lambda m: f"{m[1]}{min(int(m[2]), maxconn)}", text, flags=re.M
    )
    # the resolvers section serves Compose's DNS only; without server-template nothing uses it
    return re.sub(r"^resolvers docker\n(?:[ \t]+.*\n)*", "", text, flags=re.M)


class HAProxy(Proc):
    """Debian's haproxy in the foreground (``-db``) with a config written from the shipped
    file; its stats (which replica is up) on a second loopback port."""

    def __init__(self, workdir: Path, replicas: list[int], *, inter: str = "2s") -> None:
        self.port = free_port()
        self.stats_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = haproxy_config(HAPROXY_CFG.read_text(), self.port, replicas, inter)
        cfg += (
            f"\nfrontend stats\n    bind 127.0.0.1:{self.stats_port}\n"
            "    http-request use-service prometheus-exporter if { path /metrics }\n"
            "    stats enable\n    stats uri /stats\n"
        )
        self.cfg = workdir / "haproxy.cfg"
        self.cfg.write_text(cfg)
        check = subprocess.run(
            [HAPROXY, "-c", "-f", str(self.cfg)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, check.stdout + check.stderr
        super().__init__([HAPROXY, "-db", "-f", str(self.cfg)], workdir / "haproxy.log")
        wait_until(self._listening, START_TIMEOUT_S, "haproxy to listen")

    def _listening(self) -> bool:
        assert self.alive, "haproxy exited:\n" + self.tail()
        return answers(f"http://127.0.0.1:{self.stats_port}/stats")

    def states(self) -> dict[str, str]:
        """Each replica's state as HAProxy's health checks see it: ``UP``, ``DOWN``, ..."""
        r = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=10)
        r.raise_for_status()
        lines = r.text.lstrip("# ").splitlines()
        head = lines[0].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(","), strict=False))
            if row.get("pxname") == "replicas" and row.get("svname", "").startswith("replica"):
                out[row["svname"]] = row["status"]
        return out


class Replica:
    """One ``hostpulse server`` replica: own port and data directory (the data-dir lock is per
    replica), the shared settings in ``env``. ``kill`` then ``start`` is a crash and a
    restart on the same port."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str], *extra: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / name
        self.env = env
        self.extra = list(extra)
        self.log = workdir / f"{name}.log"
        self.proc: Proc | None = None
        self.starts = 0

    def start(self, wait: bool = True) -> Replica:
        args = [HOSTPULSE, "server", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--data-dir", str(self.data_dir), *self.extra]
        self.proc = Proc(args, self.log, clean_env(**self.env))
        self.starts += 1
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        def ready() -> bool:
            assert self.proc is not None and self.proc.alive, (
                f"{self.name} exited:\n" + self.proc_tail()
            )
            return answers(f"{self.url}/api/v1/ready")

        wait_until(ready, timeout, f"{self.name} /api/v1/ready")

    def proc_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Webhook:
    """A webhook receiver on a free loopback port: every JSON body posted to it, with the
    time it came."""

    def __init__(self) -> None:
        self.bodies: list[tuple[float, dict[str, Any]]] = []
        received = self.bodies
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    received.append((time.time(), body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
