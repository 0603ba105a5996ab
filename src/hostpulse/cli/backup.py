"""`hostpulse backup` and `hostpulse restore`: a copy of the embedded store (the server may be
running) and its return into a new data directory (``store/backup.py`` says how)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hostpulse.server.config import default_data_dir

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HOSTPULSE_DATA_DIR",
        help="The server's data directory [~/.local/share/hostpulse].",
        show_default=False,
    ),
]


def backup(
    out: Annotated[Path, typer.Argument(help="Archive to write (e.g. hostpulse-2026-12-06.tgz).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Copy the store (metrics, users, agent keys, alert rules and history) into one archive,
    while the server runs. It holds password hashes and channel secrets: keep it private."""
    from hostpulse.store.backup import BackupError
    from hostpulse.store.backup import backup as run_backup

    try:
        info = run_backup(data_dir or default_data_dir(), out)
    except (BackupError, OSError) as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"backup written: {info.path} ({info.bytes} bytes; database, "
        f"{info.segments} write-ahead log segments, {', '.join(info.files)})"
    )


def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by `hostpulse backup`.")],
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            help="New (or empty) data directory to restore into; start the server on it.",
        ),
    ],
) -> None:
    """Unpack a backup into a new data directory (refused when the directory is not empty)."""
    from hostpulse.store.backup import BackupError
    from hostpulse.store.backup import restore as run_restore

    try:
        manifest = run_restore(archive, data_dir)
    except (BackupError, OSError) as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"restored into {data_dir} (backup of hostpulse {manifest.get('hostpulse_version')}); "
        f"start it with: hostpulse server --data-dir {data_dir}"
    )
