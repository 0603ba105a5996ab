"""Custom metrics on the agent: textfile-collector files, exec plugins, bounds, bad lines."""

from __future__ import annotations

import logging
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from hostpulse import catalog
from hostpulse.agent.collectors.custom import MAX_BYTES, CustomCollector, parse_text
from hostpulse.agent.exporter import Exporter, ExporterCache
from hostpulse.agent.snapshot import HostIdentity, build_batch
from hostpulse.protocol import HostBatch, Label, SeriesDef
from hostpulse.server.ingest.errors import IngestError
from hostpulse.server.ingest.validate import validate_series

TEXT = """\
# HELP node_raid_ok 1 when the array is healthy.
# TYPE node_raid_ok gauge
node_raid_ok{md="md0"} 1
node_raid_ok{md="md1"} 0
backup_last_success_timestamp_seconds 1.7965e+09
jobs_done_total{queue="mail",host="a"} 17 1700000000000
garbage here
value_is_nan NaN
"""


def samples(reading: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.key, s.labels): s.value for s in reading.samples}  # type: ignore[attr-defined]


def test_parse_text() -> None:
    p = parse_text(TEXT, "x.prom")
    got = {(k, labels): v for k, labels, v in p.samples}
    assert got == {
        ("custom:node_raid_ok", (("md", "md0"),)): 1.0,
        ("custom:node_raid_ok", (("md", "md1"),)): 0.0,
        ("custom:backup_last_success_timestamp_seconds", ()): 1.7965e09,
        ("custom:jobs_done_total", (("host", "a"), ("queue", "mail"))): 17.0,  # sorted labels
    }
    assert len(p.problems) == 2
    assert (
        p.problems[0].startswith("x.prom:7: not Prometheus text")
        and "garbage here" in p.problems[0]
    )
    assert p.problems[1].startswith("x.prom:8: value is not a finite number")


def test_bounds_on_names_labels_and_values() -> None:
    many = ",".join(f'l{i}="v"' for i in range(17))
    text = f'ok 1\nwide{{{many}}} 1\nlong{{a="{"x" * 300}"}} 1\n{"n" * 201} 1\n'
    p = parse_text(text, "t", max_labels=16)
    assert [k for k, _, _ in p.samples] == ["custom:ok"]
    assert ["more than 16 labels" in p.problems[0], "longer than 256" in p.problems[1]] == [
        True,
        True,
    ]
    assert "metric name longer than 200" in p.problems[2]


def test_textfiles_in_a_directory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.prom").write_text(TEXT)
    (tmp_path / "b.prom").write_text('node_raid_ok{md="md0"} 5\nother 2\n')  # a duplicate
    (tmp_path / "notes.txt").write_text("ignored 1\n")
    (tmp_path / "huge.prom").write_bytes(b"x 1\n" * (MAX_BYTES // 4 + 1))
    c = CustomCollector(textfile_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING):
        r = c.collect(1.0)
        c.collect(2.0)  # the same problems are logged once
    got = samples(r)
    assert got[("custom:node_raid_ok", (("md", "md0"),))] == 1.0  # the first file wins
    assert got[("custom:other", ())] == 2.0
    assert ("custom:ignored", ()) not in got
    assert not any(k == "custom:x" for k, _ in got)
    logged = [rec.getMessage() for rec in caplog.records]
    assert any("garbage here" in m for m in logged)
    assert any("huge.prom: larger than" in m for m in logged)
    assert any("duplicate series custom:node_raid_ok" in m for m in logged)
    assert len(logged) == len(set(logged))


def test_max_series(tmp_path: Path) -> None:
    (tmp_path / "many.prom").write_text("".join(f'm{{i="{i}"}} {i}\n' for i in range(50)))
    r = CustomCollector(textfile_dir=str(tmp_path), max_series=20).collect(1.0)
    assert len(r.samples) == 20
    assert any("30 series over custom.max_series (20)" in e for e in r.errors)


def test_exec_plugins(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text("print('queue_depth{queue=\"mail\"} 42')\nprint('oops')\n")
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    failing = tmp_path / "failing.py"
    failing.write_text("import sys\nsys.stderr.write('no database\\n')\nsys.exit(3)\n")
    now = [0.0]
    c = CustomCollector(
        exec_commands={
            "good": f"{sys.executable} {good}",
            "slow": f"{sys.executable} {slow}",
            "failing": f"{sys.executable} {failing}",
            "missing": "/nonexistent/plugin --flag",
        },
        exec_interval=60,
        exec_timeout=1.0,
        clock=lambda: now[0],
    )
    r = c.collect(1.0)
    assert samples(r) == {("custom:queue_depth", (("queue", "mail"),)): 42.0}
    errors = "\n".join(r.errors)
    assert "exec plugin good:2: not Prometheus text" in errors and "'oops'" in errors
    assert "exec plugin slow: killed after 1 s" in errors
    assert "exec plugin failing: exit status 3: no database" in errors
    assert "exec plugin missing:" in errors
    # within the interval the plugins are not run again; the last output is kept
    good.write_text("print('queue_depth{queue=\"mail\"} 7')\n")
    now[0] = 30.0
    assert samples(c.collect(2.0)) == {("custom:queue_depth", (("queue", "mail"),)): 42.0}
    now[0] = 61.0
    c._commands = {"good": c._commands["good"]}
    assert samples(c.collect(3.0)) == {("custom:queue_depth", (("queue", "mail"),)): 7.0}


def test_exported_on_the_agents_metrics(tmp_path: Path) -> None:
    (tmp_path / "a.prom").write_text(TEXT)
    reading = CustomCollector(textfile_dir=str(tmp_path)).collect(1.0)
    identity = HostIdentity(host_id="h", labels={}, interval_seconds=5.0)
    batch = build_batch({"custom": reading}, identity, timestamp_ms=1, sequence=1)
    cache = ExporterCache()
    cache.put(batch)
    exporter = Exporter(cache, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(exporter.url, timeout=10) as r:
            text = r.read().decode()
    finally:
        exporter.close()
    assert 'node_raid_ok{md="md1"} 0.0' in text
    assert 'jobs_done_total{host="a",queue="mail"} 17.0' in text
    assert "backup_last_success_timestamp_seconds 1796500000.0" in text


def _batch(metric: str, labels: list[tuple[str, str]]) -> HostBatch:
    b = HostBatch(
        series=[SeriesDef(metric=metric, labels=[Label(name=n, value=v) for n, v in labels])]
    )
    b.host.host_id = "h"
    return b


@pytest.mark.parametrize(
    ("metric", "labels", "says"),
    [
        ("custom:bad name", [], "not a Prometheus name"),
        ("custom:x", [("b", "1"), ("a", "2")], "sorted"),
        ("custom:x", [(f"l{i:02}", "v") for i in range(17)], "more than 16 labels"),
        ("custom:x", [("a", "v" * 257)], "longer than 256"),
        ("custom:x", [("1a", "v")], "not a Prometheus label name"),
        ("nonsense", [], "not in the catalog"),
    ],
)
def test_the_server_refuses_bad_custom_series(
    metric: str, labels: list[tuple[str, str]], says: str
) -> None:
    b = _batch(metric, labels)
    keys = [(s.metric, tuple((lb.name, lb.value) for lb in s.labels)) for s in b.series]
    with pytest.raises(IngestError, match=says) as info:
        validate_series(b, 0, keys)
    assert info.value.status == 422


def test_the_server_accepts_custom_series() -> None:
    b = _batch("custom:node_raid_ok", [("md", "md0")])
    keys = [(s.metric, tuple((lb.name, lb.value) for lb in s.labels)) for s in b.series]
    validate_series(b, 0, keys)
    assert catalog.custom_problem("custom:a:b_c", (("x", "1"),)) is None


def test_alert_rules_take_custom_metrics() -> None:
    from hostpulse.alerts.schema import ThresholdRule

    rule = ThresholdRule.model_validate(
        {"id": "r", "metric": "custom:queue_depth", "labels": {"queue": "mail"}, "critical": 1}
    )
    assert rule.metric == "custom:queue_depth"
    with pytest.raises(ValueError, match="not a Prometheus name"):
        ThresholdRule.model_validate({"id": "r", "metric": "custom:no way", "critical": 1})
    with pytest.raises(ValueError, match="unknown metric"):
        ThresholdRule.model_validate({"id": "r", "metric": "no_such_metric", "critical": 1})


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    f = tmp_path / "a.prom"
    f.write_text("backup_ok 1\n")
    c = CustomCollector(textfile_dir=str(tmp_path))
    assert samples(c.collect(1.0)) == {("custom:backup_ok", ()): 1.0}
    tmp = tmp_path / "a.prom.tmp"  # as cron jobs do: write aside, rename over
    tmp.write_text("backup_ok 0\nbackup_size_bytes 12\n")
    st = f.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    tmp.replace(f)
    assert samples(c.collect(2.0)) == {
        ("custom:backup_ok", ()): 0.0,
        ("custom:backup_size_bytes", ()): 12.0,
    }
    f.unlink()
    assert samples(c.collect(3.0)) == {}


def test_unchanged_files_give_the_same_samples_and_problems_each_time(tmp_path: Path) -> None:
    """Nothing re-parsed or re-checked while the files are unchanged, but every collection
    still carries all their samples and their problems; a new file shows at once."""
    (tmp_path / "a.prom").write_text('jobs{queue="mail"} 3\nnot a sample\n')
    (tmp_path / "b.prom").write_text('jobs{queue="mail"} 4\nbackup_ok 1\n')  # a duplicate
    c = CustomCollector(textfile_dir=str(tmp_path))
    first = c.collect(1.0)
    for t in (2.0, 3.0):
        again = c.collect(t)
        assert (
            samples(again)
            == samples(first)
            == {
                ("custom:jobs", (("queue", "mail"),)): 3.0,
                ("custom:backup_ok", ()): 1.0,
            }
        )
        assert again.errors == first.errors and len(first.errors) == 2
    (tmp_path / "c.prom").write_text("restores_total 2\n")
    assert samples(c.collect(4.0))[("custom:restores_total", ())] == 2.0
