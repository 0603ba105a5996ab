"""The agent on macOS and Windows, as far as this Linux machine can tell: every agent module
imports with the platform switched and the POSIX-only modules hidden, and the collectors run on
their psutil paths (the Linux fast paths off) and keep the collector contract."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hostpulse.agent.delivery.settings import SpoolSettings
from hostpulse.agent.delivery.spool import Spool, SpoolError

SCRIPT = textwrap.dedent(
    """
    import importlib, os, pkgutil, sys, time

    # Third-party libraries come built for the platform they are installed on: load the ones
    # for this machine first, then pretend to be the other platform for hostpulse's own code.
    import google.protobuf, psutil, yaml  # noqa: F401
    import argparse, email.utils, gzip, hashlib, http.client, json, logging.handlers  # noqa
    import shutil, socket, ssl, subprocess, tempfile, urllib.parse, zlib  # noqa

    platform, os_name = sys.argv[1], sys.argv[2]
    hidden = sys.argv[3].split(",") if sys.argv[3] else []
    for name in hidden:
        sys.modules[name] = None  # "import fcntl" raises ImportError, as on Windows
    real_os_name = os.name
    sys.platform, os.name = platform, os_name

    import hostpulse.agent
    modules = ["hostpulse.catalog", "hostpulse.protocol", "hostpulse.cli.agent",
               "hostpulse.cli.once", "hostpulse.cli.fmt", "hostpulse.cli.entry"]
    for info in pkgutil.walk_packages(hostpulse.agent.__path__, "hostpulse.agent."):
        modules.append(info.name)
    for name in modules:
        importlib.import_module(name)
    print("imported", len(modules))
    os.name = real_os_name  # pathlib needs the real one to make paths; the platform stays

    from hostpulse import catalog
    from hostpulse.agent.collectors import build_collectors
    from hostpulse.agent.collectors._common import current_platform
    from hostpulse.agent.collectors.processes import ProcessCollector
    from hostpulse.agent.config import AgentSettings, ContainerSettings

    for c in build_collectors(top_n=3, containers=ContainerSettings()):
        fast = [a for a in ("_procfs", "_use_procfs", "_netlink", "_use_netlink")
                if getattr(c, a, False)]
        assert not fast, (c.name, fast)  # no Linux fast path on this platform
    collectors = build_collectors(top_n=3, containers=ContainerSettings())
    for c in collectors:
        c.collect(time.monotonic())
    time.sleep(0.3)
    plat = current_platform()
    for c in collectors:
        r = c.collect(time.monotonic())
        declared = {m.key: m for m in catalog.for_collector(c.name)}
        emitted = {s.key for s in r.samples}
        assert emitted <= set(declared), c.name
        # This machine's psutil may give more than the real platform's (which the catalog
        # says it lacks); the snapshot lists a key as unsupported only when it is absent.
        gaps = {k for k, m in declared.items() if not m.supported_on(plat)}
        assert not (emitted & r.unsupported) - gaps, (c.name, emitted & r.unsupported)
        for key, m in declared.items():
            assert key in emitted or key in r.unsupported, (c.name, key)
            if not m.supported_on(plat):
                assert key in r.unsupported, (c.name, key)
        for s in r.samples:
            assert tuple(n for n, _ in s.labels) == declared[s.key].labels, s
        errors = [e for e in r.errors if "permission denied" not in e.lower()]
        assert not errors, (c.name, r.errors)
        if c.name == "processes":
            assert r.top_cpu and r.top_memory
    print("collected", len(collectors))
    """
)

POSIX_ONLY = "fcntl,pwd,grp,termios,tty,resource,posix1e"


@pytest.mark.parametrize(
    ("platform", "os_name", "hidden"),
    [("win32", "nt", POSIX_ONLY), ("darwin", "posix", "")],
    ids=["windows", "macos"],
)
def test_agent_modules_import_and_collect_on_another_platform(
    platform: str, os_name: str, hidden: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, platform, os_name, hidden],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported, collected = result.stdout.split("\n")[:2]
    assert int(imported.split()[1]) > 40
    assert collected == "collected 11"


def test_the_spool_lock_keeps_a_second_agent_out(tmp_path: Path) -> None:
    settings = SpoolSettings(dir=str(tmp_path / "spool"))
    with Spool(settings), pytest.raises(SpoolError, match="in use by another agent"):
        Spool(settings)
    with Spool(settings):  # released on close
        pass


def test_default_spool_directory_per_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    from hostpulse.agent.delivery import settings as s

    monkeypatch.setattr(s.sys, "platform", "win32")
    assert s.default_spool_dir().parts[-4:] == ("AppData", "Local", "hostpulse", "spool")
    monkeypatch.setattr(s.sys, "platform", "linux")
    assert s.default_spool_dir().parts[-4:] == (".local", "state", "hostpulse", "spool")
