"""What the agent reports of a process's command line: ``full``, ``redacted`` (the default) or
``off`` (setting ``process_cmdline``).

Command lines carry secrets (``--db-password=...``, ``postgres://app:secret@db/app``,
``AWS_SECRET_ACCESS_KEY=...`` before a command run through ``env``), and the server keeps them
for days and shows them to every viewer. Redaction replaces the *value* and keeps the rest, so
that an operator can still tell the processes apart:

* ``--name=value`` / ``-name=value`` / ``name=value`` (env-like) when the name suggests a
  secret -> ``--name=***``;
* ``--name value`` (the value as the next argument, not itself an option) likewise;
* a URL's password (``scheme://user:password@host``) -> ``scheme://user:***@host``;
* inside an argument holding a whole command (``sh -c "..."``), each word likewise.

A name suggests a secret when it contains password, passwd, pwd, pass, secret, token, key,
credential(s) or auth (case-insensitive, ``-`` and ``_`` alike): ``--api-key``,
``MYSQL_PWD``, ``--client-secret``, ``GITHUB_TOKEN``, ``--auth``. This is a best effort on
well-formed arguments: a secret given positionally (``mysql -psecret``, ``curl -u user:pass``)
is not recognised; use ``off`` where that matters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

CmdlineMode = Literal["full", "redacted", "off"]
MASK = "***"
MAX_CHARS = 4096
"""The server refuses a whole snapshot with a longer command line (422, docs/api.md): a
browser's or a JVM's can be longer, so it is cut to this many characters."""

_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|credential|auth", re.IGNORECASE)
# --name=value, -name=value, NAME=value (a name: letters, digits, '-', '_', '.')
_ASSIGN = re.compile(r"^(-{0,2}[A-Za-z_][\w.-]*)=(.*)$", re.DOTALL)
_OPTION = re.compile(r"^--?[A-Za-z][\w.-]*$")
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):([^/\s@]*)@")


def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name.lstrip("-")) is not None


def redact_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of secret-looking arguments replaced by ``***``."""
    out: list[str] = []
    mask_next = False
    for i, arg in enumerate(argv):
        if i > 0 and " " in arg.strip():  # sh -c "mysql --password=x ...": one argument
            out.append(" ".join(redact_argv(["", *arg.split(" ")])[1:]))
            mask_next = False
            continue
        if mask_next and not arg.startswith("-"):
            out.append(MASK)
            mask_next = False
            continue
        mask_next = False
        assign = _ASSIGN.match(arg) if i > 0 or "=" in arg else None
        if assign is not None and _secret_name(assign.group(1)):
            out.append(f"{assign.group(1)}={MASK}")
            continue
        if i > 0 and _OPTION.match(arg) and _secret_name(arg):
            mask_next = True
        out.append(redact_url_passwords(arg))
    return out


def render(argv: Sequence[str], mode: CmdlineMode) -> str:
    """The command line to report for ``argv`` under ``mode``."""
    if mode == "off":
        return ""
    if mode == "redacted":
        argv = redact_argv(argv)
    return " ".join(argv)[:MAX_CHARS]
