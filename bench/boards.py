"""Boards benchmark: Debian's Chromium opens a 12-widget board over 24 hours of 10 hosts.

A real server is fed 24 h of history for N hosts (default 10) by ``hostpulse simulate
--backfill`` at ``--interval`` (default 60 s, so the back-fill takes a minute, not an hour; a
24 h board reads the 1-minute rollups either way), then live. A board of 12 widgets (6 time
series of every host, 2 stats, a gauge, a bar, a table and the host grid) is created through
the API; each cold load (fresh browser profile, signed-in session) is timed from navigation
start until every widget shows its data (charts with points, stat digits, table rows, bars,
host tiles), observed inside the page. Also the server's CPU time per load (less sensitive to
a busy machine than the wall-clock figure).

    python bench/boards.py [--hosts 10] [--loads 5] [--no-doc] [--json OUT]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ADMIN_PASSWORD,
    ROOT,
    admin_headers,
    bench_args,
    cpu_seconds,
    fleet_token,
    our_server,
    process,
    report,
    write_json,
)

TARGET_MS = 1000
SERIES = (
    "cpu_busy_percent",
    "memory_usage_percent",
    "network_receive_bytes_per_second",
    "network_transmit_bytes_per_second",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
)


def board() -> dict[str, object]:
    """The 12 widgets: what a team's overview board holds."""
    w: list[dict[str, object]] = []
    for i, metric in enumerate(SERIES):
        w.append(
            {"id": f"ts{i}", "type": "timeseries", "metric": metric}
            | {"x": (i % 2) * 6, "y": (i // 2) * 4, "w": 6, "h": 4}
        )
    w += [
        {
            "id": "cpu",
            "type": "stat",
            "metric": "cpu_busy_percent",
            "x": 0,
            "y": 12,
            "w": 3,
            "h": 2,
        },
        {"id": "load", "type": "stat", "metric": "cpu_load1", "x": 3, "y": 12, "w": 3, "h": 2},
        {"id": "mem", "type": "gauge", "metric": "memory_usage_percent", "x": 6, "y": 12, "w": 3}
        | {"h": 2, "max": 100},
        {"id": "fs", "type": "bar", "metric": "filesystem_usage_percent", "x": 0, "y": 14, "w": 6}
        | {"h": 4},
        {"id": "fstab", "type": "table", "metric": "filesystem_usage_percent", "x": 6, "y": 14}
        | {"w": 6, "h": 4},
        {"id": "hosts", "type": "hosts", "x": 0, "y": 18, "w": 12, "h": 3},
    ]
    return {"name": "bench", "spec": {"range_s": 86400, "widgets": w}}


def wait_hosts(url: str, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url + "/api/v1/hosts", headers=admin_headers(url), timeout=30)
        if r.status_code == 200 and len(r.json()) >= n:
            return
        time.sleep(1)
    raise TimeoutError(f"{n} hosts did not appear")


def main() -> int:
    ap = bench_args(__doc__)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--interval", type=float, default=60.0, help="Back-fill and live interval.")
    ap.add_argument("--loads", type=int, default=5)
    args = ap.parse_args()
    sim_cmd = [sys.executable, "-c", "from hostpulse.cli.main import main; main()", "simulate"]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        with our_server(t / "data", t / "server.log") as (url, srv):
            base = [*sim_cmd, "--hosts", str(args.hosts), "--server", url]
            backfill = [*base, "--interval", str(args.interval), "--backfill", "24"]
            started = time.monotonic()
            with process(
                [*backfill, "--duration", "0", "--enroll-token", fleet_token(url)],
                t / "backfill.log",
            ) as proc:
                if proc.wait(timeout=1800) != 0:
                    print((t / "backfill.log").read_text()[-2000:], file=sys.stderr)
                    return 1
            print(f"back-fill: {time.monotonic() - started:.0f} s", file=sys.stderr)
            live = [*base, "--interval", str(args.interval), "--enroll-token", fleet_token(url)]
            with process(live, t / "live.log"):
                wait_hosts(url, args.hosts)
                headers = admin_headers(url)
                r = httpx.post(url + "/api/v1/dashboards", json=board(), headers=headers)
                r.raise_for_status()
                signed_in = httpx.post(
                    url + "/api/v1/auth/login",
                    json={"username": "admin", "password": ADMIN_PASSWORD},
                    timeout=30,
                ).json()
                session = {
                    "access": signed_in["access_token"],
                    "refresh": signed_in["refresh_token"],
                    "user": signed_in["user"],
                }
                env = {
                    "HP_URL": url,
                    "HP_BOARD": r.json()["id"],
                    "HP_SESSION": json.dumps(session),
                    "HP_LOADS": str(args.loads),
                    "PATH": "/usr/bin:/bin:/usr/local/bin",
                }
                cpu0 = cpu_seconds(srv.pid)
                out = subprocess.run(
                    ["node", str(ROOT / "bench" / "boards.mjs")],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                server_cpu = (cpu_seconds(srv.pid) - cpu0) / args.loads
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
        return 1
    print("API requests of each load, by path:", out.stderr.strip()[-3000:], file=sys.stderr)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    loads = [round(x) for x in res["loads_ms"]]
    median = statistics.median(res["loads_ms"])
    lines = [
        f"board: 12 widgets over 24 h of {args.hosts} hosts "
        f"({res['requests']} API requests a load)",
        f"cold load to every widget drawn: median {median:.0f} ms, loads {loads} ms "
        f"(target < {TARGET_MS} ms)",
        f"server CPU per load: {server_cpu * 1000:.0f} ms "
        "(the whole server process, the live simulator's pushes included)",
    ]
    if args.json is not None:
        write_json(args.json, {"board_load_ms": median, "board_server_cpu_ms": server_cpu * 1000})
    report("Boards", lines, args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
