"""The agent's sample-line parser (collectors/promtext.py) reads what prometheus_client's text
parser reads, and refuses what Prometheus's own parser (promtool) refuses, line by line."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostpulse.agent.collectors.promtext import parse_sample

GOOD = [
    "up 1",
    "a:b_c 2.5",
    'node_raid_ok{md="md0"} 1',
    'jobs_total{queue="mail",host="a"} 17 1700000000000',
    'x{a="1",} 3',
    'x{ a = "1" , b="2" } 4',
    'esc{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} 5',
    'utf{name="héllo wörld"} 6',
    "big 1.7965e+09",
    "neg -0.5",
    "plus +3",
    "tabs\t7",
    "nan NaN",
    "inf +Inf",
    "minf -Inf",
    "empty{} 8",
    'b{le="+Inf"} 9',
    "x 1 -5",
    'x{a="1"}1',
]
BAD = [
    "garbage here",
    "1abc 1",
    "noval",
    'x{a="1"}',
    'x{a="1"} one',
    "x{a=1} 1",
    'x{a="1" b="2"} 1',
    'x{a="1",a="2"} 1',
    'x{a="unterminated} 1',
    'x{a="bad\\escape"} 1',
    "x 1 2 3",
    "x 1 1.5",
    "x 1_000",
    'x{"a"="1"} 1',
]


def reference(line: str) -> tuple[str, dict[str, str], float]:
    families = list(text_string_to_metric_families(line + "\n"))
    (family,) = families
    (s,) = family.samples
    return s.name, dict(s.labels), float(s.value)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("line", GOOD)
def test_reads_what_prometheus_client_reads(line: str) -> None:
    name, labels, value = parse_sample(line)
    ref_name, ref_labels, ref_value = reference(line)
    assert (name, labels) == (ref_name, ref_labels)
    assert same(value, ref_value)


@pytest.mark.parametrize("line", BAD)
def test_refuses_what_prometheus_refuses(line: str) -> None:
    check = subprocess.run(
        ["promtool", "check", "metrics"],
        input=line + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "parsing error" in check.stderr + check.stdout
    with pytest.raises(ValueError):
        parse_sample(line)


def test_the_custom_collector_does_not_import_prometheus_client() -> None:
    code = (
        "import sys; from hostpulse.agent.collectors.custom import parse_text; "
        "parse_text('a{b=\"c\"} 1', 'x'); print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
