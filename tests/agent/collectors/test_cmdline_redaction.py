"""Process command lines: secrets are masked by default, ``full`` and ``off`` do what they say."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from collector_helpers import FakeRoot, wait_for_line

from hostpulse.agent.collectors.cmdline import redact_argv, render
from hostpulse.agent.collectors.processes import ProcessCollector
from hostpulse.agent.config import AgentSettings, ConfigError, load_settings
from hostpulse.agent.service import collect_once


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["app", "--db-password=hunter2", "--port", "5432"],
            ["app", "--db-password=***", "--port", "5432"],
        ),
        (["app", "--token", "abc123", "--verbose"], ["app", "--token", "***", "--verbose"]),
        (["app", "--auth", "--verbose"], ["app", "--auth", "--verbose"]),  # a flag: nothing
        (["app", "-passwd=x", "--api_key", "k"], ["app", "-passwd=***", "--api_key", "***"]),
        (
            ["app", "--client-secret=s", "--credentials", "/etc/c"],
            ["app", "--client-secret=***", "--credentials", "***"],
        ),
        (["redis-server", "--requirepass", "foo"], ["redis-server", "--requirepass", "***"]),
        (
            [
                "env",
                "AWS_SECRET_ACCESS_KEY=xyz",
                "GITHUB_TOKEN=ghp_1",
                "MYSQL_PWD=p",
                "PATH=/bin",
                "py",
            ],
            [
                "env",
                "AWS_SECRET_ACCESS_KEY=***",
                "GITHUB_TOKEN=***",
                "MYSQL_PWD=***",
                "PATH=/bin",
                "py",
            ],
        ),
        (
            [
                "psql",
                "postgres://app:s3cret@db:5432/app",
                "--url=https://u:p@h/x",
                "http://user@host/",
            ],
            [
                "psql",
                "postgres://app:***@db:5432/app",
                "--url=https://u:***@h/x",
                "http://user@host/",
            ],
        ),
        (
            ["java", "-Djavax.net.ssl.keyStorePassword=changeit", "-jar", "x.jar"],
            ["java", "-Djavax.net.ssl.keyStorePassword=***", "-jar", "x.jar"],
        ),
        (
            ["sh", "-c", "mysqldump --password=topsecret db > /tmp/db.sql"],
            ["sh", "-c", "mysqldump --password=*** db > /tmp/db.sql"],
        ),
        (["nginx: worker process"], ["nginx: worker process"]),
        (["python3", "-m", "http.server", "8000"], ["python3", "-m", "http.server", "8000"]),
    ],
)
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


def test_render_modes() -> None:
    argv = ["app", "--db-password=hunter2", "x"]
    assert render(argv, "full") == "app --db-password=hunter2 x"
    assert render(argv, "redacted") == "app --db-password=*** x"
    assert render(argv, "off") == ""


def test_fixture_proc_cmdline_is_redacted_by_default(fake_root: FakeRoot) -> None:
    fake_root.write("proc/42/cmdline", "/usr/bin/weird\0--db-password=hunter2\0--flag\0a b\0")
    for mode, expected in [
        (None, "/usr/bin/weird --db-password=*** --flag a b"),
        ("full", "/usr/bin/weird --db-password=hunter2 --flag a b"),
        ("off", ""),
    ]:
        kwargs = {} if mode is None else {"cmdline": mode}
        c = ProcessCollector(top_n=3, proc_root=str(fake_root.proc), **kwargs)  # type: ignore[arg-type]
        r = c.collect(1.0)
        assert r.top_cpu is not None
        weird = next(p for p in r.top_cpu if p.pid == 42)
        assert weird.cmdline == expected
        assert weird.name == "my (weird) proc"  # the name does not depend on the mode


SECRET = "hostpulse-test-secret-4711"


@pytest.fixture
def secret_child() -> Iterator[subprocess.Popen[bytes]]:
    code = "print('ready', flush=True)\nimport time\ntime.sleep(60)"
    child = subprocess.Popen(
        [sys.executable, "-c", code, f"--db-password={SECRET}", f"postgres://app:{SECRET}@db/x"],
        stdout=subprocess.PIPE,
    )
    try:
        wait_for_line(child)
        yield child
    finally:
        child.kill()
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()


@pytest.mark.parametrize("use_procfs", [True, False], ids=["procfs", "psutil"])
def test_a_real_process_secret_never_leaves_the_collector(
    secret_child: subprocess.Popen[bytes], use_procfs: bool
) -> None:
    c = ProcessCollector(top_n=100_000, use_procfs=use_procfs)
    r = c.collect(time.monotonic())
    assert r.top_memory is not None
    mine = next(p for p in r.top_memory if p.pid == secret_child.pid)
    assert SECRET not in mine.cmdline
    assert "--db-password=***" in mine.cmdline and "postgres://app:***@db/x" in mine.cmdline


def test_the_agent_setting(secret_child: subprocess.Popen[bytes]) -> None:
    assert AgentSettings().process_cmdline == "redacted"
    assert load_settings(env={"HOSTPULSE_PROCESS_CMDLINE": "off"}).process_cmdline == "off"
    with pytest.raises(ConfigError, match="process_cmdline"):
        load_settings(env={"HOSTPULSE_PROCESS_CMDLINE": "some"})
    batch = collect_once(AgentSettings(top_n=1000, process_cmdline="full"), pause=0.1)
    cmdlines = [p.cmdline for p in batch.snapshots[-1].top_memory]
    assert any(f"--db-password={SECRET}" in c for c in cmdlines)
    batch = collect_once(AgentSettings(top_n=1000), pause=0.1)
    assert all(SECRET not in p.cmdline for p in batch.snapshots[-1].top_memory)
    assert all(SECRET not in p.cmdline for p in batch.snapshots[-1].top_cpu)


def test_a_command_line_longer_than_the_server_takes_is_cut() -> None:
    # a browser's command line (seen on a CI machine) ran past the server's 4,096 characters,
    # and the server refuses the whole snapshot (422) for it
    from hostpulse.agent.collectors.cmdline import MAX_CHARS, render

    argv = ["/usr/lib/chromium/chromium", *[f"--flag-{i}=value" for i in range(1000)]]
    for mode in ("full", "redacted"):
        shown = render(argv, mode)
        assert len(shown) == MAX_CHARS == 4096
        assert shown.startswith("/usr/lib/chromium/chromium --flag-0=value")
