"""Are two servers' history answers the same bytes? A check for changes of the read path.

Starts a hostpulse server from each of two source trees (one after the other) on the same data
directory, a fill that ``bench/query.py --data DIR`` kept, and sends each the same history
requests, each twice (the second time through the kept rows, points and JSON): both tiers
and raw, every aggregation, starts inside a bucket, ranges with and without head data, ones
older than the watermark, pages, label filters, refused requests, and "last 24 hours" /
"last 30 days" moving on second by second, for the raw-path and generated hosts. Times are
fixed (``--at``), so both servers get the same URLs; the data must not change in between (no
agents pushing). Prints how many answers were compared and those that differ (status, bytes).

    python bench/history_answers.py --data /work/qdata --server-src ../main/src
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RawClient, admin_headers, our_server
from query import SEED, _keep_admin_password

from hostpulse.sim.push import make_hosts

H = 3_600_000
D = 24 * H
History = "/api/v1/hosts/{}/metrics/{}/history?{}"


def urls(hosts: list[str], end0: int) -> Iterator[str]:
    ranges: list[tuple[int, int, str | None]] = [
        (end0 - 30 * D, end0, "3600s"),
        (end0 - 30 * D + 12_345, end0 - 777, "1h"),
        (end0 - 30 * D - 1_800_000, end0 + 5 * H, "2h"),
        (end0 - D, end0, "60s"),
        (end0 - D + 31_111, end0 + 1_000, "60"),
        (end0 - D, end0, "5m"),
        (end0 - 3 * D - 7, end0 - 2 * D + 3, "60s"),
        (end0 - 20 * D, end0 - 10 * D, "3600s"),
        (end0 - 6 * D - 13, end0 - 5 * D, "1h"),
        (end0 - H, end0, None),
        (end0 - 6 * H, end0, None),
        (end0 - 2 * D, end0, None),
        (end0 - 10 * D, end0, None),
        (end0 - 300_000, end0 + 60_000, "5s"),
    ]
    cpu = "cpu_busy_percent"
    for h in hosts:
        for s, e, step in ranges:
            for agg in ("avg", "min", "max", "last"):
                for tier in (None, "1m", "1h") if step != "5s" else (None, "raw"):
                    q = f"start={s}&end={e}" + (f"&step={step}" if step else "") + f"&agg={agg}"
                    yield History.format(h, cpu, q + (f"&tier={tier}" if tier else ""))
        for k in range(0, 7200, 97):  # a dashboard's range moving on with the clock
            e = end0 + k * 1000
            yield History.format(h, cpu, f"start={e - 30 * D}&end={e}&step=3600s")
            yield History.format(h, cpu, f"start={e - D}&end={e}&step=60s")
        for metric in ("cpu_core_busy_percent", "memory_used_bytes"):
            for s, e, step in ranges[:6]:
                yield History.format(h, metric, f"start={s}&end={e}&step={step}")
        day = f"start={end0 - D}&end={end0}&step=60s"
        yield History.format(h, "cpu_core_busy_percent", day + "&label.cpu=0")
        yield History.format(h, cpu, day + "&limit=100")
        yield History.format(h, cpu, day + f"&limit=100&cursor=t{end0 - D // 2}")
        yield History.format(h, "nope", day)
        yield History.format(h, cpu, f"start={end0}&end={end0 - D}")
        yield History.format(h, cpu, "start=now-30d&step=1h&agg=bogus")
    yield History.format("no-such-host", cpu, "start=0&end=1")


async def fetch(url: str, headers: dict[str, str], paths: list[str]) -> list[tuple[int, str]]:
    host, port = url.removeprefix("http://").split(":")
    conn = RawClient(host, int(port))
    out = []
    for path in paths:
        status, body = await conn.send(RawClient.build("GET", path, host, headers, b""))
        out.append((status, hashlib.sha256(body).hexdigest()))
    await conn.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="a fill kept by bench/query.py")
    ap.add_argument("--hosts", type=int, default=1000, help="as for the fill")
    ap.add_argument("--deep-hosts", type=int, default=2, help="as for the fill")
    ap.add_argument("--server-src", type=Path, required=True, help="the other tree's src/")
    ap.add_argument("--at", type=int, default=int(time.time()), help="the ranges' end (s)")
    args = ap.parse_args()
    _keep_admin_password(args.data / "admin-password")
    fleet = make_hosts(args.hosts, seed=SEED)
    picks = [*range(args.deep_hosts), args.deep_hosts, args.hosts // 2, args.hosts - 1]
    paths = [p for p in urls([fleet[i].host_id for i in picks], args.at * 1000) for _ in (0, 1)]
    got = []
    for src in (None, args.server_src):
        with our_server(args.data / "ours", args.data / "answers.log", src=src) as (url, _):
            got.append(asyncio.run(fetch(url, admin_headers(url), paths)))
    differ = [(p, a, b) for p, a, b in zip(paths, *got, strict=True) if a != b]
    ok = sum(1 for status, _ in got[0] if status == 200)
    print(
        f"{len(paths)} answers compared ({len(paths) // 2} URLs twice, {ok} of them 200), "
        f"{len(differ)} differ"
    )
    for path, a, b in differ[:20]:
        print(f"  {path}: this tree {a}, {args.server_src} {b}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
