"""Installed size and install time of the agent-only install against the full one, and the
agent's peak RSS while shipping, from the agent-only install.

1. Builds hostpulse's wheel (``pip wheel``), then for ``hostpulse`` and ``hostpulse[server]``
   makes a fresh venv, times ``pip install`` of the wheel (pip's cache as it is: run it twice
   for a warm cache) and sums the files under the venv's site-packages (MB, 10^6 bytes).
2. With ``--rss-seconds N`` (default 60; 0 skips): starts ``hostpulse server`` from the full
   venv on a loopback port, creates an enrollment token, starts the agent-only venv's
   ``hostpulse agent --interval 5 --server URL --enroll TOKEN`` and after N seconds reads the
   agent's peak RSS (VmHWM) and its CPU seconds per collection.

Prints a Markdown table and the load average; ``--append FILE`` adds it to FILE.

    .venv/bin/python bench/install_size.py [--rss-seconds 60] [--append docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(*args: str | Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, env=env
    )
    if out.returncode:
        raise SystemExit(f"{args}: {out.stderr}")
    return out.stdout


def tree_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


def install(wheel: Path, extra: str, dest: Path) -> tuple[float, float, int]:
    """Seconds for ``pip install``, MB of site-packages, number of distributions."""
    base = getattr(sys, "_base_executable", sys.executable)
    sh(base, "-m", "venv", dest)
    before = tree_mb(next(dest.glob("lib/python*/site-packages")))
    started = time.perf_counter()
    sh(dest / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}{extra}")
    seconds = time.perf_counter() - started
    site = next(dest.glob("lib/python*/site-packages"))
    listed = json.loads(sh(dest / "bin" / "python", "-m", "pip", "list", "--format", "json"))
    return seconds, tree_mb(site) - before, len(listed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def post(url: str, body: dict[str, object], token: str | None = None) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        data: dict[str, object] = json.loads(resp.read())
        return data


def agent_rss(full: Path, agent: Path, seconds: float, work: Path) -> tuple[float, float]:
    """Peak RSS (MB) of the agent shipping every 5 s, and its CPU ms per collection."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    password = "bench-" + secrets.token_urlsafe(12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    server = subprocess.Popen(
        [full / "bin" / "hostpulse", "server", "--port", str(port), "--data-dir", work / "data"],
        env={**env, "HOSTPULSE_ADMIN_PASSWORD": password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/ready", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        login = post(f"{url}/api/v1/auth/login", {"username": "admin", "password": password})
        token = post(
            f"{url}/api/v1/enrollment-tokens", {"host_id": "bench"}, str(login["access_token"])
        )
        proc = subprocess.Popen(
            [agent / "bin" / "hostpulse", "agent", "--interval", "5", "--server", url,
             "--host-id", "bench", "--spool-dir", work / "spool", "--enroll", str(token["token"])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(seconds)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        collections = max(1, int(seconds // 5))
        return (int(match.group(1)) / 1024 if match else float("nan")), cpu / collections * 1000
    finally:
        for p in (proc, server):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rss-seconds", type=float, default=60.0)
    parser.add_argument("--append", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT)
        (wheel,) = (work / "dist").glob("hostpulse-*.whl")
        rows = {
            "agent only (`pip install hostpulse`)": install(wheel, "", work / "agent"),
            "full (`pip install 'hostpulse[server]'`)": install(wheel, "[server]", work / "full"),
        }
        rss = None
        if args.rss_seconds > 0:
            rss = agent_rss(work / "full", work / "agent", args.rss_seconds, work)
    load = os.getloadavg()
    lines = [
        f"### Install size and time ({datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})",
        "",
        f"`{' '.join(['python', *sys.argv])}` (pip's cache warm; sizes are site-packages, MB)",
        "",
        "| install | distributions | size (MB) | pip install (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, (seconds, mb, count) in rows.items():
        lines.append(f"| {name} | {count} | {mb:.1f} | {seconds:.1f} |")
    if rss is not None:
        lines += [
            "",
            f"Agent from the agent-only install, shipping every 5 s for {args.rss_seconds:.0f} s: "
            f"peak RSS {rss[0]:.1f} MB, CPU {rss[1]:.1f} ms per collection.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with args.append.open("a") as f:
            f.write("\n" + text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
