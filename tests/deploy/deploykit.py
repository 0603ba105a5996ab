"""Helpers of the deployment tests: build hostpulse's wheel, make fresh virtual environments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERVER_PACKAGES = frozenset(
    {
        "fastapi",
        "uvicorn",
        "starlette",
        "sqlalchemy",
        "aiosqlite",
        "alembic",
        "numpy",
        "orjson",
        "argon2-cffi",
        "pyjwt",
        "httpx",
        "pydantic-settings",
        "zstandard",
        "isal",
    }
)
"""What an agent-only install must not pull (the ``server`` extra and what only it brings)."""


def run(
    args: Sequence[str | Path],
    *,
    timeout: float = 600,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def build_wheel(dest: Path) -> Path:
    """hostpulse's wheel as ``pip wheel`` builds it from the source tree (hatchling)."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dest, ROOT])
    (wheel,) = dest.glob("hostpulse-*-py3-none-any.whl")
    return wheel


def fresh_venv(path: Path) -> Path:
    """A new virtual environment (of the base Python, not the test's venv); its bin dir."""
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", path])
    return path / "bin"


def installed(bin_dir: Path) -> set[str]:
    """Normalised names of the distributions installed in the venv of ``bin_dir``."""
    out = run([bin_dir / "python", "-m", "pip", "list", "--format", "json"]).stdout
    return {d["name"].lower().replace("_", "-") for d in json.loads(out)}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the test venv's and our HOSTPULSE_* settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HOSTPULSE_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(extra)
    return env
