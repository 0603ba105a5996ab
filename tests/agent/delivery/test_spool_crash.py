"""A process appending to the spool is killed with SIGKILL at random points; every record whose
append had returned is there after reopening, in order, once."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool

CHILD = """
import sys, time, uuid
from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool
spool = Spool(SpoolSettings(dir=sys.argv[1], max_bytes=8 << 20, segment_bytes=32 << 10))
last_sync = time.monotonic()
for i in range(1_000_000):
    token = uuid.uuid4().hex.encode()
    spool.append(token * 8)
    sys.stdout.write(token.decode() + "\\n")
    sys.stdout.flush()
    if time.monotonic() - last_sync >= 0.2:
        spool.sync()
        last_sync = time.monotonic()
"""


def run_and_kill(spool_dir: Path, appended: int) -> list[bytes]:
    """Start a writer, SIGKILL it after ``appended`` reported appends; the reported tokens."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(spool_dir)], stdout=subprocess.PIPE, bufsize=0
    )
    assert proc.stdout is not None
    tokens: list[bytes] = []
    buf = b""
    deadline = time.monotonic() + 30
    try:
        while len(tokens) < appended:
            assert time.monotonic() < deadline, "writer too slow"
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"writer exited: {proc.wait()}"
                buf += chunk
                *lines, buf = buf.split(b"\n")
                tokens.extend(line for line in lines if line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # what the writer reported before it died is still in the pipe
        buf += proc.stdout.read()
        proc.stdout.close()
    tokens.extend(line for line in buf.split(b"\n") if len(line) == 32)
    return tokens


def test_sigkill_loses_nothing_that_was_appended(tmp_path: Path) -> None:
    rng = random.Random(7)
    spool_dir = tmp_path / "spool"
    reported: list[bytes] = []
    delivered: list[bytes] = []
    for _round in range(6):
        reported.extend(run_and_kill(spool_dir, rng.randint(50, 1500)))
        with Spool(SpoolSettings(dir=str(spool_dir), max_bytes=8 << 20)) as spool:
            assert spool.stats().counters.get("lost_corrupt", 0) == 0
            # deliver a random part of what is pending, as a shipper would between crashes
            for _ in range(rng.randint(0, 5)):
                batch = spool.read_batch(rng.randint(1, 300), 1 << 20)
                spool.ack(r.seq for r in batch)
                delivered.extend(r.payload[:32] for r in batch)
    with Spool(SpoolSettings(dir=str(spool_dir), max_bytes=8 << 20)) as spool:
        pending: list[bytes] = []
        for _ in range(1000):
            batch = spool.read_batch(500, 8 << 20)
            if not batch:
                break
            spool.ack(r.seq for r in batch)
            pending.extend(r.payload[:32] for r in batch)
    everything = delivered + pending
    assert len(everything) == len(set(everything)), "a record came out twice"
    got = set(everything)
    assert all(t in got for t in reported), "an appended record was lost"
    # at most the record in flight at each kill is beyond what was reported
    assert len(everything) - len(reported) <= 6
    order = {t: i for i, t in enumerate(reported)}
    seen = [order[t] for t in everything if t in order]
    assert seen == sorted(seen), "records came out of order"


FULL_DISK_CHILD = """
import resource, signal, sys
from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool, SpoolError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
spool = Spool(SpoolSettings(dir=sys.argv[1], max_bytes=8 << 20, segment_bytes=1 << 20))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # no file may grow past 20 kB
ok, errors = [], set()
for i in range(200):
    try:
        spool.append(f"{i:05d}".encode() * 50)
        ok.append(i)
    except SpoolError as exc:
        errors.add(str(exc))
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
for i in range(200, 210):
    spool.append(f"{i:05d}".encode() * 50)
    ok.append(i)
spool.close()
print(",".join(map(str, ok)))
print("|".join(sorted(errors)))
"""


def test_a_full_disk_refuses_the_record_and_leaves_no_torn_one(tmp_path: Path) -> None:
    """A write that fails half way (the file size limit stands in for a full disk: a real
    EFBIG from the kernel) is cut off again; later appends and the next open are clean."""
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ok_line, errors = done.stdout.strip().split("\n")
    ok = [int(i) for i in ok_line.split(",")]
    assert "cannot write to the spool" in errors
    assert 0 < len(ok) - 10 < 200  # some fit, the rest were refused
    with Spool(SpoolSettings(dir=str(tmp_path))) as spool:
        assert spool.stats().counters.get("lost_corrupt", 0) == 0
        assert spool.stats().counters.get("corrupt_bytes", 0) == 0
        got = [r.payload for r in spool.read_batch(1000, 1 << 30)]
    assert got == [f"{i:05d}".encode() * 50 for i in ok]
