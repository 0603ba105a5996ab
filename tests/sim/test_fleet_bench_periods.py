"""The fleet benchmark says whether the server's resources are flat after warm-up by the mean
of each whole block-window period: a saw-tooth with the window's period (the head filling
and being compacted) must read as flat, however the run's end cuts the last period, and a
leak as its rate; the blocks' growth is put per sample stored."""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fleet  # bench/fleet.py

MIB = 2**20


def samples(seconds: int, leak_mb_per_min: float) -> list[fleet.Sample]:
    """Every 30 s: RSS and the WAL a saw-tooth with the 600 s period, plus a leak on RSS;
    the blocks growing by 1 MiB a minute."""
    out: list[fleet.Sample] = []
    for t in range(0, seconds, 30):
        phase = (t % fleet.PERIOD_S) / fleet.PERIOD_S
        rss = 200 + 300 * phase + leak_mb_per_min * t / 60
        wal = int(1000 * phase * MIB)
        blocks = int(50 * MIB + t / 60 * MIB)
        out.append((float(t), rss, 40 + t // 30 % 2, blocks + wal, wal))
    return out


def run_of(resources: list[fleet.Sample], seconds: float) -> fleet.Run:
    run = fleet.Run(hosts=100, sent=int(seconds * 20), seconds=seconds, resources=resources)
    run.samples_per_request = 150.0
    return run


def test_a_saw_tooth_reads_flat_where_the_slope_does_not() -> None:
    run = run_of(samples(1800, 0.0), 1800)
    rows, growth = fleet.period_figures(run, warmup=900)
    # one period from the warm-up, one more ending with the run (they overlap)
    assert [(r["from_s"], r["to_s"]) for r in rows] == [(900, 1470), (1200, 1770)]
    assert all(math.isclose(r["rss_mb_mean"], rows[0]["rss_mb_mean"]) for r in rows)
    assert abs(growth["rss_mb"]) < 1e-9
    assert abs(growth["wal_mb"]) < 1e-6
    assert abs(growth["open_files"]) < 1e-9
    assert math.isclose(growth["blocks_mb"], 1.0, rel_tol=1e-3)
    # 1 MiB a minute over 20 requests a second of 150 samples each
    assert math.isclose(growth["blocks_bytes_per_sample"], MIB / (60 * 20 * 150), rel_tol=1e-3)
    after = [(r[0], r[1]) for r in run.resources if r[0] >= 900]
    assert fleet.slope_per_min(after) > 3  # what a slope over part of a period says


def test_a_leak_reads_as_its_rate_per_minute() -> None:
    rows, growth = fleet.period_figures(run_of(samples(2700, 2.0), 2700), warmup=900)
    assert [r["from_s"] for r in rows] == [900, 1500, 2100]
    assert math.isclose(growth["rss_mb"], 2.0, rel_tol=1e-6)
    lines = fleet.period_lines({"periods": rows, "period_growth_per_min": growth})
    assert "RSS +2.00 MB" in lines[-1]


def test_no_whole_period_after_the_warm_up_is_said() -> None:
    rows, growth = fleet.period_figures(run_of(samples(600, 0.0), 600), warmup=60)
    assert rows == []
    assert math.isnan(growth["rss_mb"])
    assert (
        "no whole 600 s period"
        in fleet.period_lines({"periods": [], "period_growth_per_min": growth})[0]
    )
