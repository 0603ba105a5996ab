"""The secret-leak guard really fails a run: a tiny session that logs an agent key exits with
"tests failed" although its test passed; the same session without the log line passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from leakguard import find_leaks

TESTS = Path(__file__).resolve().parent

LEAKY = """
import logging
from hostpulse.server.auth import tokens

def test_issues_a_key():
    key = tokens.new_token(tokens.AGENT_KEY_PREFIX)
    if LEAK:
        logging.getLogger("some.module").warning("agent key is %s", key)
    assert key.startswith("hpk_")
"""


def run(tmp_path: Path, leak: bool, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_leaky.py").write_text(f"LEAK = {leak}\n" + LEAKY)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "leakguard", "-p", "no:cacheprovider", "-q", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_leaked_key_fails_the_run(tmp_path: Path, workers: list[str]) -> None:
    leaky = run(tmp_path, True, *workers)
    assert "1 passed" in leaky.stdout
    assert leaky.returncode == 1, leaky.stdout + leaky.stderr
    assert "SECRETS LEAKED" in leaky.stdout and "'hpk_" in leaky.stdout
    clean = run(tmp_path, False, *workers)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_find_leaks_names_the_place_not_the_secret() -> None:
    secret = "hpr_" + "s" * 40
    found = find_leaks({secret}, [("a.log", "nothing"), ("b.log", f"token={secret}")])
    assert found == ["a secret starting 'hpr_ss' (44 chars) in b.log"]
    assert find_leaks({secret}, [("a.log", "token=[redacted]")]) == []


def test_values_that_look_like_ordinary_text_are_not_recorded() -> None:
    import leakguard

    before = set(leakguard.SECRETS)
    leakguard.record_secret("000000000000")  # a fuzzed password; also a zero-padded number
    leakguard.record_secret("short-pw")
    assert before == leakguard.SECRETS
    leakguard.record_secret("pw-Zq8xK2mL9vTn")
    assert "pw-Zq8xK2mL9vTn" in leakguard.SECRETS
    leakguard.SECRETS.discard("pw-Zq8xK2mL9vTn")
