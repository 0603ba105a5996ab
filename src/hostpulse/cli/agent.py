"""``hostpulse agent``: collect on a schedule, serve /metrics, or print one snapshot (--once).

The agent runs for months on every host, so its process stays small: this module parses its
flags with argparse and :mod:`hostpulse.cli.entry` dispatches ``hostpulse agent`` here before
typer (which pulls in pydantic, ~15 MB) is imported. No fastapi, sqlalchemy or numpy either;
rich only for ``--once`` tables. :mod:`hostpulse.cli.agent_cmd` lists the command in
``hostpulse --help`` and forwards to :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hostpulse import __version__

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from hostpulse.agent.config import AgentSettings

EXIT_CONFIG = 2

DESCRIPTION = (
    "Run the agent: collect every --interval seconds and serve Prometheus /metrics with "
    "--listen; or print one snapshot with --once. Settings come from flags > HOSTPULSE_* "
    "environment variables > the --config YAML file > defaults."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"hostpulse agent: {message} (see hostpulse agent --help)\n")

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        from hostpulse.cli.agent_help import print_help

        print_help(self)  # to stdout, drawn like the typer commands' help


class _Formatter(argparse.HelpFormatter):
    """A fixed width: argparse's default asks shutil for the terminal's, and importing shutil
    (with bz2 and lzma) costs the long-running agent 0.5 MB; the help is drawn by agent_help."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hostpulse agent", description=DESCRIPTION, add_help=False, formatter_class=_Formatter
    )
    p.add_argument("--config", "-c", metavar="FILE", help="YAML settings (or HOSTPULSE_CONFIG).")
    p.add_argument("--once", action="store_true", help="Print one snapshot and exit (~1 s).")
    p.add_argument(
        "--format", "-f", choices=("table", "json"), default="table", help="--once output."
    )
    p.add_argument("--interval", metavar="SECONDS", help="Collection interval [5, min 1].")
    p.add_argument("--top-n", metavar="N", help="Processes in the top lists [10].")
    p.add_argument("--listen", metavar="HOST:PORT", help="Serve /metrics, e.g. 127.0.0.1:9100.")
    p.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="Ship to this hostpulse server (http(s)://...). Repeat it (or give a comma "
        "list) to fail over: the URLs are tried in order of preference.",
    )
    p.add_argument(
        "--ca",
        metavar="FILE",
        help="PEM CA certificate that signed the server's (or the self-signed certificate "
        "itself); default: the system's CAs.",
    )
    p.add_argument("--spool-dir", metavar="DIR", help="On-disk buffer for unsent snapshots.")
    p.add_argument(
        "--enroll",
        metavar="TOKEN",
        help="Exchange this enrollment token (from the server's admin) for the host's agent "
        "key, save it to the key file, then run (the token shows in the process list: "
        "prefer --enroll-file or HOSTPULSE_ENROLL_TOKEN).",
    )
    p.add_argument(
        "--enroll-file",
        metavar="FILE",
        help="Read the enrollment token from this file instead; like HOSTPULSE_ENROLL_TOKEN, "
        "used only while the host has no saved key.",
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="This host's agent key [agent.key beside the spool directory].",
    )
    p.add_argument("--host-id", metavar="ID", help="Host identifier [/etc/machine-id].")
    p.add_argument(
        "--host-root",
        metavar="DIR",
        help="In a container: where the host's / is mounted (read-only); the host's /proc and "
        "/sys are read at DIR/proc and DIR/sys, its filesystems measured under DIR.",
    )
    p.add_argument(
        "--label", "-l", action="append", metavar="NAME=VALUE", help="Host label (repeat)."
    )
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning, error [info].")
    p.add_argument("--log-file", metavar="FILE", help="Also log to this rotating file.")
    p.add_argument(
        "--version",
        action="version",
        version=f"hostpulse {__version__}",
        help="Print the hostpulse version and exit.",
    )
    p.add_argument("--help", "-h", action="help", help="Show this message and exit.")
    return p


def _fail(message: str) -> int:
    sys.stderr.write(f"hostpulse agent: {message}\n")
    return EXIT_CONFIG


def main(argv: Sequence[str]) -> int:
    """Run ``hostpulse agent`` with ``argv`` (the arguments after ``agent``); the exit status."""
    try:
        return _run(build_parser().parse_args(list(argv)))
    except KeyboardInterrupt:  # Ctrl-C during --once or start-up: no traceback
        return 130


def _run(args: argparse.Namespace) -> int:
    from hostpulse.agent.config import ConfigError, load_settings

    overrides: dict[str, object] = {
        "interval": args.interval,
        "top_n": args.top_n,
        "exporter.listen": args.listen,
        "shipper.server": ",".join(args.server) if args.server else None,
        "shipper.ca_file": args.ca,
        "spool.dir": args.spool_dir,
        "shipper.key_file": args.key_file,
        "host_id": args.host_id,
        "host_root": args.host_root,
        "log.level": args.log_level,
        "log.file": args.log_file,
        "labels": ",".join(args.label) if args.label else None,
    }
    try:
        settings = load_settings(Path(args.config) if args.config else None, overrides=overrides)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")

    from hostpulse.agent.logging_setup import setup_logging

    try:
        setup_logging(settings.log)
    except OSError as exc:
        return _fail(f"configuration error: log.file: cannot open it: {exc.strerror}")

    try:
        token = _enroll_token(args, settings)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
        return _fail(f"--enroll-file: cannot read {args.enroll_file}: {why}")
    if token is not None:
        code = _enroll(settings, token)
        if code:
            return code

    from hostpulse.agent.delivery.spool import SpoolError
    from hostpulse.agent.service import ListenError, collect_once, serve

    if args.once:
        batch = collect_once(settings)
        from hostpulse.cli.once import print_json, print_table

        try:
            (print_json if args.format == "json" else print_table)(batch)
            sys.stdout.flush()
        except BrokenPipeError:  # `hostpulse agent --once | head`: the reader has what it wanted
            # Python flushes stdout again at exit; point it at /dev/null so that cannot fail.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    try:
        serve(settings)
    except ListenError as exc:
        return _fail(
            f"exporter.listen: cannot listen on {settings.exporter.listen}: {exc.strerror}"
        )
    except SpoolError as exc:
        return _fail(f"spool.dir: {exc}")
    return 0


def _enroll_token(args: argparse.Namespace, settings: AgentSettings) -> str | None:
    """The token to enroll with now: ``--enroll`` always; ``--enroll-file`` or
    ``HOSTPULSE_ENROLL_TOKEN`` only while no key is saved (so that they can stay in a service
    unit across restarts). OSError when the file cannot be read or is empty."""
    if args.enroll:
        return str(args.enroll)
    if args.enroll_file is None and settings.enroll_token is None:
        return None
    from hostpulse.agent.delivery.enroll import EnrollError, key_path, read_key

    if settings.shipper.api_key:
        return None
    try:
        if read_key(key_path(settings.shipper, settings.spool)) is not None:
            return None
    except EnrollError:
        return None  # the shipper reports the unreadable key file
    if args.enroll_file is None:
        return settings.enroll_token
    token = Path(args.enroll_file).expanduser().read_text(encoding="utf-8").strip()
    if not token:
        raise OSError(0, "the file is empty")
    return token


def _enroll(settings: AgentSettings, token: str) -> int:
    """Exchange ``token`` for this host's key and save it (mode 0600); 0 or the exit status."""
    import logging
    import socket

    from hostpulse.agent.delivery.enroll import EnrollError, key_path, request_key, save_key
    from hostpulse.agent.snapshot import resolve_host_id

    host_id = resolve_host_id(
        settings.host_id, machine_id=Path(settings.rootfs()) / "etc" / "machine-id"
    )
    path = key_path(settings.shipper, settings.spool)
    try:
        key = request_key(settings.shipper, token, host_id, socket.gethostname())
        save_key(path, key)
    except EnrollError as exc:
        return _fail(f"enrollment failed: {exc}")
    except OSError as exc:
        return _fail(f"shipper.key_file: cannot write {path}: {exc.strerror}")
    logging.getLogger(__name__).info("enrolled host %s; its agent key is in %s", host_id, path)
    return 0
