"""Temperatures and fans (psutil's structures), NVIDIA GPUs through nvidia-smi: recorded
output parsed, a fake nvidia-smi script on PATH, and absent tools reported unsupported."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from test_collector_contract import check

from hostpulse import catalog
from hostpulse.agent.collectors.gpu import GpuCollector, parse
from hostpulse.agent.collectors.sensors import SensorsCollector


class shwtemp(NamedTuple):
    label: str
    current: float
    high: float | None
    critical: float | None


class sfan(NamedTuple):
    label: str
    current: int


# nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,
#   power.draw --format=csv,noheader,nounits  on a two-GPU machine (driver 550); the second
#   card does not report its power draw.
RECORDED = """\
0, NVIDIA GeForce RTX 3090, 37, 1543, 24576, 54, 112.45
1, Tesla T4, 0, 0, 15360, 31, [N/A]
"""


def values(reading: object, key: str) -> dict[str, float]:
    return {
        dict(s.labels).get("gpu") or dict(s.labels)["sensor"]: s.value
        for s in reading.samples
        if s.key == key
    }  # type: ignore[attr-defined]


def test_parse_recorded_nvidia_smi_output() -> None:
    samples, problems = parse(RECORDED)
    assert not problems
    got = {(key, dict(labels)["gpu"]): v for key, labels, v in samples}
    assert got[("gpu_utilization_percent", "0")] == 37
    assert got[("gpu_memory_used_bytes", "0")] == 1543 * 2**20
    assert got[("gpu_memory_total_bytes", "1")] == 15360 * 2**20
    assert got[("gpu_temperature_celsius", "1")] == 31
    assert got[("gpu_power_watts", "0")] == 112.45
    assert ("gpu_power_watts", "1") not in got  # [N/A]: just that metric is missing
    names = {dict(labels)["name"] for _, labels, _ in samples}
    assert names == {"NVIDIA GeForce RTX 3090", "Tesla T4"}
    samples, problems = parse("garbage line\n0, x, 1\n")
    assert not samples and len(problems) == 2 and "garbage line" in problems[0]


def fake_nvidia_smi(directory: Path, body: str) -> None:
    script = directory / "nvidia-smi"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_fake_nvidia_smi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(
        tmp_path,
        "import sys\n"
        "assert sys.argv[1].startswith('--query-gpu=index,name,'), sys.argv\n"
        "assert sys.argv[2] == '--format=csv,noheader,nounits'\n"
        f"sys.stdout.write({RECORDED!r})\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    c = GpuCollector()
    r = c.collect(1.0)
    check(c, r, rates_expected=True)
    assert not r.errors
    assert values(r, "gpu_utilization_percent") == {"0": 37.0, "1": 0.0}
    assert values(r, "gpu_power_watts") == {"0": 112.45}
    assert not r.unsupported


def test_a_failing_or_hanging_nvidia_smi_is_an_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(
        tmp_path,
        "import sys\nsys.stderr.write('NVIDIA-SMI has failed because it couldn\\'t "
        "communicate with the NVIDIA driver.\\n')\nsys.exit(9)\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    r = GpuCollector().collect(1.0)
    assert r.errors == [
        "nvidia-smi: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    ]
    assert r.unsupported == {m.key for m in catalog.for_collector("gpu")}
    fake_nvidia_smi(tmp_path, "import time\ntime.sleep(30)\n")
    r = GpuCollector(timeout=0.5).collect(1.0)
    assert r.errors == ["nvidia-smi: no answer within 0.5 s"] and not r.samples


def test_no_nvidia_smi_means_unsupported_never_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    c = GpuCollector()
    r = c.collect(1.0)
    check(c, r, rates_expected=True)
    assert not r.errors and not r.samples
    assert r.unsupported == {m.key for m in catalog.for_collector("gpu")}


def test_temperatures_and_fans() -> None:
    temps = {
        "coretemp": [
            shwtemp("Package id 0", 61.0, 84.0, 100.0),
            shwtemp("Core 0", 58.0, 84.0, 100.0),
            shwtemp("", 40.0, None, None),  # unlabeled
        ],
        "nvme": [shwtemp("Composite", 38.85, 81.85, None)],
    }
    fans = {"thinkpad": [sfan("", 2800)], "nct6798": [sfan("cpu_fan", 1200)]}
    c = SensorsCollector(temperatures=lambda: temps, fans=lambda: fans)
    r = c.collect(1.0)
    check(c, r, rates_expected=True)
    got = {
        (dict(s.labels)["chip"], dict(s.labels)["sensor"]): s.value
        for s in r.samples
        if s.key == "sensor_temperature_celsius"
    }
    assert got == {
        ("coretemp", "Package id 0"): 61.0,
        ("coretemp", "Core 0"): 58.0,
        ("coretemp", "temperature3"): 40.0,
        ("nvme", "Composite"): 38.85,
    }
    critical = {
        dict(s.labels)["sensor"]: s.value
        for s in r.samples
        if s.key == "sensor_temperature_critical_celsius"
    }
    assert critical == {"Package id 0": 100.0, "Core 0": 100.0}
    assert values(r, "sensor_fan_rpm") == {"fan1": 2800.0, "cpu_fan": 1200.0}


def test_this_machine_sensors_or_unsupported() -> None:
    c = SensorsCollector()
    r = c.collect(1.0)
    check(c, r, rates_expected=True)
    assert not r.errors
    for s in r.samples:  # whatever this machine has is a plausible reading
        assert -50 < s.value < 200 or s.key == "sensor_fan_rpm"


def test_a_sensor_reader_that_fails_is_an_error() -> None:
    def broken() -> dict[str, list[object]]:
        raise OSError(5, "Input/output error")

    r = SensorsCollector(temperatures=broken, fans=lambda: {}).collect(1.0)
    assert r.errors == ["sensors temperatures: [Errno 5] Input/output error"]
    assert r.unsupported == {m.key for m in catalog.for_collector("sensors")}
