"""Server memory while one agent key sends the worst requests the default limits allow.

Starts ``hostpulse server`` with its default limits (the per-key rate limit included), enrolls
one host and measures the server's idle RSS; then, for ``--seconds``, sends in turn: the
largest valid request (5,000 series x 50 snapshots, at max_head_cells), a sparse one (one
snapshot in each of 50 ten-minute windows of the past week), 10^6 series definitions (refused
before parsing) and a JSON body just under max_json_bytes (refused over max_head_cells),
honouring 429 Retry-After like an agent. The server's RSS is sampled every 0.2 s, and the
store's in-memory head (``hostpulse_store_head_bytes`` on /metrics) every second. The bounds
(docs/security.md): peak RSS under 2x the idle RSS; the head under max_head_bytes_per_host.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from _common import SERVER_ENV, bench_args, enroll_all, free_port, process, report, wait_http

from hostpulse.protocol import HostBatch, IngestRequest, codec

SERIES = 5000
HOST = "worst"
METRICS_TOKEN = "worst-requests-bench-metrics-token"


def head_bytes(client: httpx.Client) -> int:
    """The store's ``hostpulse_store_head_bytes`` (0 when the store does not report it)."""
    resp = client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    for line in resp.text.splitlines():
        if line.startswith("hostpulse_store_head_bytes "):
            return int(float(line.split()[1]))
    return 0


def _table(hb: HostBatch) -> None:
    hb.host.host_id = HOST
    hb.host.hostname = "worst.example"
    hb.host.interval_seconds = 5
    for c in range(SERIES):
        hb.series.add(metric="cpu_core_busy_percent").labels.add(name="cpu", value=str(c))


def largest(t0: int, samples: int) -> bytes:
    hb = HostBatch()
    _table(hb)
    for i in range(samples // SERIES):
        snap = hb.snapshots.add(timestamp_ms=t0 + i * 5000)
        snap.series_index.extend(range(SERIES))
        snap.values.extend([1.5 + i] * SERIES)
    return codec.encode(IngestRequest(batches=[hb]))


def sparse(t0: int, windows: int) -> bytes:
    hb = HostBatch()
    _table(hb)
    for w in range(windows):
        snap = hb.snapshots.add(timestamp_ms=t0 + w * 600_000)
        snap.series_index.extend(range(SERIES))
        snap.values.extend([2.5] * SERIES)
    return codec.encode(IngestRequest(batches=[hb]))


def million_series() -> bytes:
    def ld(field: int, payload: bytes) -> bytes:
        size, out = len(payload), bytearray([field << 3 | 2])
        while True:
            b, size = size & 0x7F, size >> 7
            out.append(b | (0x80 if size else 0))
            if not size:
                return bytes(out) + payload

    one = ld(2, ld(1, b"cpu_busy_percent"))
    return gzip.compress(ld(1, ld(1, ld(1, HOST.encode())) + one * 1_000_000), compresslevel=1)


def big_json(t0: int, limit: int) -> bytes:
    hb = HostBatch()
    _table(hb)
    doc = json.loads(codec.encode(IngestRequest(batches=[hb]), json=True, encoding="identity"))
    snaps = []
    size = len(json.dumps(doc))
    i = 0
    while size < limit - 2000 and i < 9_999:
        idx = [(i * 100 + j) % SERIES for j in range(100)]
        s = {"timestampMs": str(t0 + i * 100), "seriesIndex": idx, "values": [0.5] * 100}
        size += len(json.dumps(s)) + 2
        snaps.append(s)
        i += 1
    doc["batches"][0]["snapshots"] = snaps
    return json.dumps(doc).encode()


def main() -> None:
    ap = bench_args(__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument(
        "--only",
        choices=["largest", "sparse", "million series", "json"],
        help="send only this kind of request (to see which one costs the memory)",
    )
    args = ap.parse_args()
    env = {**os.environ, **SERVER_ENV}
    for k in ("HOSTPULSE_AGENT_RATE_LIMIT", "HOSTPULSE_USER_RATE_LIMIT"):
        env.pop(k)  # the default limits: what one key may really do
    env["HOSTPULSE_USER_RATE_LIMIT"] = "100000"  # the bench's own sign-in and enrollment
    env["HOSTPULSE_METRICS_TOKEN"] = METRICS_TOKEN
    head_bound = int(env.get("HOSTPULSE_MAX_HEAD_BYTES_PER_HOST", 64 * 1024 * 1024))
    json_limit = int(env.get("HOSTPULSE_MAX_JSON_BYTES", 2 << 20))  # the largest JSON body
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
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
            str(Path(tmp) / "data"),
            "--log-level",
            "warning",
        ]
        with process(cmd, Path(tmp) / "server.log", env) as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/api/v1/health", proc=proc)
            key = enroll_all(url, [HOST])[HOST]
            server = psutil.Process(proc.pid)
            now = int(time.time() * 1000)
            headers = {"authorization": f"Bearer {key}"}
            pb = {**headers, "content-type": "application/x-protobuf", "content-encoding": "gzip"}
            with httpx.Client(base_url=url, timeout=300) as client:
                r = client.post("/api/v1/ingest", content=largest(now - 60_000, SERIES), headers=pb)
                r.raise_for_status()
                time.sleep(3)
                idle = server.memory_info().rss
                peak = idle
                peak_head = 0
                stop = threading.Event()

                def sample() -> None:
                    nonlocal peak, peak_head
                    with httpx.Client(base_url=url, timeout=30) as scraper:
                        ticks = 0
                        while not stop.wait(0.2):
                            peak = max(peak, server.memory_info().rss)
                            ticks += 1
                            if ticks % 5 == 0:
                                peak_head = max(peak_head, head_bytes(scraper))

                sampler = threading.Thread(target=sample)
                sampler.start()
                statuses: dict[int, int] = {}
                bodies = [
                    (
                        "largest",
                        lambda k: largest(now - 6 * 86_400_000 + k * 1_000_000, 250_000),
                        pb,
                    ),
                    (
                        "sparse",
                        lambda k: sparse(now - 6 * 86_400_000 + k * 7_200_000 + 300_000, 50),
                        pb,
                    ),
                    ("million series", lambda k: million_series(), pb),
                    (
                        "json",
                        lambda k: big_json(now - 5 * 86_400_000 + k * 1_000_000, json_limit),
                        {**headers, "content-type": "application/json"},
                    ),
                ]
                if args.only:
                    bodies = [b for b in bodies if b[0] == args.only]
                started = time.monotonic()
                k = 0
                while time.monotonic() - started < args.seconds:
                    _name, make, h = bodies[k % len(bodies)]
                    resp = client.post("/api/v1/ingest", content=make(k), headers=h)
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                    if resp.status_code in (429, 503):
                        wait = float(resp.headers.get("retry-after", "1"))
                        time.sleep(min(wait, max(0.0, args.seconds - (time.monotonic() - started))))
                        continue
                    k += 1
                stop.set()
                sampler.join()
                after = server.memory_info().rss
    mib = 1024 * 1024
    lines = [
        f"idle RSS {idle / mib:.0f} MiB, peak {peak / mib:.0f} MiB ({peak / idle:.2f}x idle), "
        f"after {after / mib:.0f} MiB",
        f"requests ({args.only or 'all kinds'}) by status over {args.seconds:.0f} s: "
        + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())),
        f"bound (2x idle): {'held' if peak < 2 * idle else 'EXCEEDED'}",
        f"store head peak {peak_head / mib:.1f} MiB, bound max_head_bytes_per_host "
        f"{head_bound / mib:.0f} MiB: {'held' if peak_head <= head_bound else 'EXCEEDED'}",
        f"load average: {os.getloadavg()[0]:.1f}",
    ]
    report("Worst requests of one agent key", lines, args.no_doc)


if __name__ == "__main__":
    main()
