"""A pytest plugin that fails the run when a secret shows up where it must not.

Every secret the code issues in this process is recorded as it is made: generated passwords,
every password that is hashed (so every password a test sets), refresh tokens, agent keys,
enrollment tokens and access tokens. Every log record (after the loggers' filters, as a
handler would get it) and every test's captured stdout/stderr/log is recorded as well; tests
may add other output they read (a subprocess's log) with ``record_output``. At the end of the
session each secret is searched for in all of that text; any hit sets the exit status to
"tests failed" and names where it was found (never the secret itself).

Enabled for the whole suite by ``tests/conftest.py``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pytest

SECRETS: set[str] = set()
TEXTS: list[tuple[str, str]] = []  # (where, text)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
MIN_SECRET = 12
MIN_DISTINCT = 8
"""A value with fewer distinct characters (``000000000000``, a password the schema fuzzing made
up) cannot be told from ordinary text such as a zero-padded number in a log line; every key,
token and generated password has far more."""


def record_secret(value: str | None) -> None:
    if value and len(value) >= MIN_SECRET and len(set(value)) >= MIN_DISTINCT:
        SECRETS.add(value)


def record_output(where: str, text: str) -> None:
    TEXTS.append((where, text))


def _recording(fn: Callable[..., Any], pick: Callable[[Any, tuple[Any, ...]], str]) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        record_secret(pick(result, args))
        return result

    return wrapper


def install() -> None:
    from hostpulse.server.auth import passwords, tokens

    tokens.new_token = _recording(tokens.new_token, lambda r, a: r)
    tokens.issue_access = _recording(tokens.issue_access, lambda r, a: r)
    passwords.generate_password = _recording(passwords.generate_password, lambda r, a: r)
    passwords.hash_password = _recording(passwords.hash_password, lambda r, a: a[0])

    original = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        text = record.getMessage() + (f" {extras!r}" if extras else "")
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        TEXTS.append((f"log record of {record.name}", text))
        original(self, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]


def find_leaks(secrets: set[str], texts: list[tuple[str, str]]) -> list[str]:
    """Where each secret was found: ``"<kind> <first 6 chars>... in <where>"``."""
    found = []
    for secret in secrets:
        for where, text in texts:
            if secret in text:
                found.append(f"a secret starting {secret[:6]!r} ({len(secret)} chars) in {where}")
                break
    return found


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:
        record_output(f"{report.nodeid} ({name})", content)
    if report.longrepr is not None:
        record_output(f"{report.nodeid} (failure report)", str(report.longrepr))


WORKER_LEAKS: list[str] = []
"""With pytest-xdist: what the workers found (each worker searches its own tests' output)."""


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist's controller: a worker's finding fails the run here (a worker's own exit
    status does not reach the controller's)."""
    output = getattr(node, "workeroutput", {})
    WORKER_LEAKS.extend(output.get("hostpulse_leaks", []))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = find_leaks(SECRETS, TEXTS) + WORKER_LEAKS
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails the run
        workeroutput["hostpulse_leaks"] = leaks
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["SECRETS LEAKED into logs or test output:", *leaks]
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
