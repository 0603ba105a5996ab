"""Shared pieces of the benchmarks: free ports, processes stopped by PID, a minimal keep-alive
HTTP/1.1 client (so the client costs little next to the servers it measures), percentiles, and
appending results to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from hostpulse.protocol.varint import encode as varint  # re-exported for _prom

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
ADMIN_PASSWORD = "bench-" + secrets.token_urlsafe(12)
"""The first admin's password of every server a benchmark starts (HOSTPULSE_ADMIN_PASSWORD)."""
SERVER_ENV = {
    "HOSTPULSE_ADMIN_PASSWORD": ADMIN_PASSWORD,
    # a benchmark pushes far faster than the per-key limit (100 requests/min) allows
    "HOSTPULSE_AGENT_RATE_LIMIT": "100000000",
    "HOSTPULSE_USER_RATE_LIMIT": "100000000",
}


def admin_headers(url: str) -> dict[str, str]:
    """Sign in as the admin: its Authorization header."""
    r = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        timeout=30,
    )
    r.raise_for_status()
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def fleet_token(url: str) -> str:
    """A multi-use enrollment token (for ``hostpulse simulate --enroll-token``)."""
    r = httpx.post(
        f"{url}/api/v1/enrollment-tokens",
        json={"single_use": False, "ttl_seconds": 86400, "max_hosts": 10_000},
        headers=admin_headers(url),
        timeout=30,
    )
    r.raise_for_status()
    token: str = r.json()["token"]
    return token


def has_agent_keys(url: str) -> bool:
    """Whether the server takes agent keys (a server from before authentication has no login
    route: 404)."""
    r = httpx.post(f"{url}/api/v1/auth/login", json={}, timeout=30)
    return r.status_code != 404


def enroll_all(url: str, host_ids: Sequence[str], connections: int = 32) -> dict[str, str]:
    """Enroll every host like its agent would (one request each, ``connections`` at a time, as
    a fleet started together does): host_id -> its agent key."""
    return asyncio.run(enroll_all_async(url, host_ids, connections))


async def enroll_all_async(
    url: str, host_ids: Sequence[str], connections: int = 32
) -> dict[str, str]:
    """``enroll_all`` inside a running event loop."""
    token = await asyncio.to_thread(fleet_token, url)
    host, port = url.removeprefix("http://").split(":")
    path = "/api/v1/agent/enroll"
    headers = {"content-type": "application/json"}
    todo = list(host_ids)
    keys: dict[str, str] = {}

    async def worker() -> None:
        conn = RawClient(host, int(port))
        try:
            while todo:
                host_id = todo.pop()
                body = json.dumps({"token": token, "host_id": host_id}).encode()
                status, answer = await conn.send(
                    RawClient.build("POST", path, f"{host}:{port}", headers, body)
                )
                if status != 201:
                    raise RuntimeError(f"enrolling {host_id}: HTTP {status} {answer[:200]!r}")
                keys[host_id] = json.loads(answer)["key"]
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(todo))))))
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def process(
    cmd: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` (output to ``log``); always stopped by its PID (TERM, then KILL)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)


@contextlib.contextmanager
def our_server(
    data_dir: Path, log: Path, *extra: str, src: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``hostpulse server`` (uvicorn, one process) on a free loopback port; ``src``: run the
    package from another source tree (e.g. an older commit's ``src``) instead."""
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from hostpulse.cli.main import main; main()",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        *extra,
    ]
    env = {**os.environ, **SERVER_ENV}
    if src is not None:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    with process(cmd, log, env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/v1/health", proc=proc)
        # with acceptors nothing is accepted before they run: the count is final here
        acceptors = [
            c for c in psutil.Process(proc.pid).children() if "acceptor" in " ".join(c.cmdline())
        ]
        print(f"hostpulse server (pid {proc.pid}): {len(acceptors)} ingest acceptor process(es)")
        yield url, proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants: the ones still running
    (``children_*`` of ``cpu_times`` only counts children that have exited and been waited
    for, so a server's worker processes would otherwise be left out) and the ended ones."""
    p = psutil.Process(pid)
    t = p.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in p.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            c = child.cpu_times()
            total += c.user + c.system
    return float(total)


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class RawClient:
    """One keep-alive HTTP/1.1 connection; sends pre-built requests and reads the answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # one request at a time on the connection

    async def _connect(self) -> None:
        self._r, self._w = await asyncio.open_connection(self.host, self.port)

    @staticmethod
    def build(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        status, body, _ = await self.send_timed(raw)
        return status, body

    async def send_timed(self, raw: bytes) -> tuple[int, bytes, float]:
        """Status, body, and seconds from writing the request to its answer (not counting
        the wait for the connection while an earlier request is on it)."""
        async with self._lock:
            reused = self._w is not None
            t0 = time.perf_counter()
            try:
                return (*await self._send(raw), time.perf_counter() - t0)
            except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
            # a kept-alive connection the server had closed while idle (uvicorn after 5 s,
            # VictoriaMetrics after 1 min): it read nothing of the request; send it on a new one
            await self.close()
            t0 = time.perf_counter()
            return (*await self._send(raw), time.perf_counter() - t0)

    async def _send(self, raw: bytes) -> tuple[int, bytes]:
        if self._w is None:
            await self._connect()
        assert self._r is not None and self._w is not None
        self._w.write(raw)
        await self._w.drain()
        head = await self._r.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self._r.readuntil(b"\r\n")).strip(), 16)
                chunk = await self._r.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self._r.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        if self._w is not None:
            self._w.close()
            with contextlib.suppress(Exception):
                await self._w.wait_closed()
        self._r = self._w = None  # the next send connects again


def machine() -> str:
    return (
        f"{platform.node()}: {psutil.cpu_count()} cores (shared with other jobs), "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB, Python {platform.python_version()}"
    )


def dir_size(path: Path) -> int:
    """Bytes of the files below ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pb_field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: the tag byte, the length, the payload (encoded by hand
    so that a benchmark can concatenate pre-encoded parts)."""
    return bytes([tag]) + varint(len(payload)) + payload


def bench_args(doc: str | None) -> argparse.ArgumentParser:
    """The benchmark's argument parser: its docstring as the help, and ``--no-doc``."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--no-doc", action="store_true", help="do not append to docs/benchmarks.md")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    return ap


def write_json(path: Path, figures: dict[str, Any]) -> None:
    """The figures of a run, machine-readable (what ``bench/all.py`` collects)."""
    path.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


def append_doc(title: str, command: str, body: str) -> None:
    """Append a dated section to docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n### {title} — {when}\n\nMachine: {machine()}.  \nCommand: `{command}`\n\n{body}\n"
    with DOC.open("a") as f:
        f.write(text)


def report(title: str, lines: list[str], no_doc: bool) -> None:
    """Print the result lines; unless ``no_doc``, append them as a code block to
    docs/benchmarks.md under ``title``, with the command that produced them."""
    text = "\n".join(lines)
    print(text)
    if not no_doc:
        append_doc(title, "python " + " ".join(sys.argv), f"```\n{text}\n```")
