"""``hostpulse agent``: collect on a schedule, serve /metrics, or print one snapshot (--once).

The agent runs for months on every host, so its process stays small: this module parses its
flags with argparse and :mod:`hostpulse.cli.entry` dispatches ``hostpulse agent`` here before
typer (which pulls in pydantic, ~15 MB) is imported. No fastapi, sqlalchemy or numpy either;
rich only for ``--once`` tables. :mod:`hostpulse.cli.agent_cmd` lists the command in
``hostpulse --help`` and forwards to :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

EXIT_CONFIG = 2

DESCRIPTION = (
    "Run the agent: collect every --interval seconds and serve Prometheus /metrics with "
    "--listen; or print one snapshot with --once. Settings come from flags > HOSTPULSE_* "
    "environment variables > the --config YAML file > defaults."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"hostpulse agent: {message} (see hostpulse agent --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hostpulse agent", description=DESCRIPTION)
    p.add_argument("--config", "-c", metavar="FILE", help="YAML settings (or HOSTPULSE_CONFIG)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit (~1 s)")
    p.add_argument(
        "--format", "-f", choices=("table", "json"), default="table", help="--once output"
    )
    p.add_argument("--interval", metavar="SECONDS", help="collection interval (default 5, min 1)")
    p.add_argument("--top-n", metavar="N", help="processes in the top lists (default 10)")
    p.add_argument("--listen", metavar="HOST:PORT", help="serve /metrics, e.g. 127.0.0.1:9100")
    p.add_argument("--server", metavar="URL", help="ship to this hostpulse server (http(s)://...)")
    p.add_argument(
        "--ca",
        metavar="FILE",
        help="PEM CA certificate that signed the server's (or the self-signed certificate "
        "itself); default: the system's CAs",
    )
    p.add_argument("--spool-dir", metavar="DIR", help="on-disk buffer for unsent snapshots")
    p.add_argument("--host-id", metavar="ID", help="host identifier (default /etc/machine-id)")
    p.add_argument(
        "--label", "-l", action="append", metavar="NAME=VALUE", help="host label (repeat)"
    )
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning, error")
    p.add_argument("--log-file", metavar="FILE", help="also log to this rotating file")
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
        "shipper.server": args.server,
        "shipper.ca_file": args.ca,
        "spool.dir": args.spool_dir,
        "host_id": args.host_id,
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

    from hostpulse.agent.service import ListenError, collect_once, serve
    from hostpulse.agent.spool import SpoolError

    if args.once:
        batch = collect_once(settings)
        from hostpulse.cli.once import print_json, print_table

        (print_json if args.format == "json" else print_table)(batch)
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
