"""Backup and restore of the embedded store, while the server runs.

What lives in a data directory: ``store/hostpulse.db`` (SQLite: hosts, series, compressed
blocks, users, agent keys, alert rules and history), ``store/hostpulse.wal/*.wal`` (the
write-ahead log: requests acknowledged but not yet compacted into blocks) and small files at
the top (``jwt-secret``, which signs access tokens).

A consistent copy without stopping the server: the log is copied *first*, then the database
with SQLite's online backup API (one consistent snapshot, readers never block the server's
writes). Every sample the server had acknowledged when the copy started is then in one of the
two: either its segment was still there (copied), or maintenance had compacted it into blocks
and dropped the segment, in which case the database copy, made later, has the blocks. Samples in
both are recognised as duplicates when the restored server replays the log, as after a crash;
a record the server was appending while it was copied is a torn tail, cut off at replay (each
record has a CRC). Samples acknowledged after the copy started may or may not be in it.

The archive is a gzip'd tar: ``manifest.json``, the top-level files, ``store/hostpulse.db`` and
``store/hostpulse.wal/<segment>.wal``. ``restore`` accepts exactly these names (nothing can be
written outside the new directory) and only into a new or empty directory.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hostpulse import __version__
from hostpulse.store import DB_FILE, WAL_DIR

FORMAT = 1
STORE_DIR = "store"
MANIFEST = "manifest.json"
MAX_TOP_FILE_BYTES = 1 << 20
"""Top-level files larger than this are not the server's (it keeps only small ones there)."""
_SEGMENT = re.compile(rf"^{STORE_DIR}/{re.escape(WAL_DIR)}/[0-9]{{1,20}}\.wal$")
_TOP_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DB_MEMBER = f"{STORE_DIR}/{DB_FILE}"


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    bytes: int
    segments: int
    files: list[str]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_open_file(tar: tarfile.TarFile, name: str, fh: BinaryIO) -> None:
    """The first bytes of ``fh`` up to its size now (a log segment may grow meanwhile: what
    is appended later is not part of the copy)."""
    info = tarfile.TarInfo(name)
    info.size = os.fstat(fh.fileno()).st_size
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, fh)


def _copy_database(db_path: Path, into: Path) -> None:
    source = sqlite3.connect(db_path, timeout=60)  # only read; WAL mode: never blocks the server
    try:
        target = sqlite3.connect(into)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
    finally:
        source.close()


def backup(data_dir: Path, out: Path) -> BackupInfo:
    """Write an archive of the store in ``data_dir`` (the server may be running) to ``out``
    (written beside it under a temporary name, then renamed: never a half archive)."""
    store_dir = data_dir / STORE_DIR
    db_path = store_dir / DB_FILE
    if not db_path.is_file():
        raise BackupError(
            f"no store in {data_dir}: {db_path} does not exist "
            "(give the server's data directory: --data-dir or HOSTPULSE_DATA_DIR)"
        )
    if out.exists():
        raise BackupError(f"{out} exists already; give a new file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    segments = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for path in sorted(data_dir.iterdir()):
                small = path.is_file() and path.stat().st_size <= MAX_TOP_FILE_BYTES
                if small and _TOP_FILE.match(path.name):
                    _add_bytes(tar, path.name, path.read_bytes())
                    files.append(path.name)
            wal_dir = store_dir / WAL_DIR
            for seg in sorted(wal_dir.glob("*.wal")) if wal_dir.is_dir() else []:
                try:
                    fh = seg.open("rb")
                except FileNotFoundError:  # compacted and dropped meanwhile: in the database
                    continue
                with fh:
                    _add_open_file(tar, f"{STORE_DIR}/{WAL_DIR}/{seg.name}", fh)
                segments += 1
            with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
                copy = Path(scratch) / DB_FILE
                try:
                    _copy_database(db_path, copy)
                except sqlite3.Error as exc:
                    raise BackupError(f"cannot copy {db_path}: {exc}") from None
                with copy.open("rb") as fh:
                    _add_open_file(tar, _DB_MEMBER, fh)
            files.append(_DB_MEMBER)
            manifest = {
                "format": FORMAT,
                "hostpulse_version": __version__,
                "created_ms": int(time.time() * 1000),
                "files": files,
                "wal_segments": segments,
            }
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)  # user names, password hashes and channel secrets inside
        tmp.rename(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupInfo(out, out.stat().st_size, segments, files)


def _allowed(name: str) -> bool:
    if name in (MANIFEST, _DB_MEMBER) or _SEGMENT.match(name):
        return True
    return "/" not in name and _TOP_FILE.match(name) is not None


def _check_target(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(
            f"{data_dir} is not empty: restore only into a new or empty directory "
            "(nothing was changed)"
        )


def restore(archive: Path, data_dir: Path) -> dict[str, object]:
    """Unpack ``archive`` into ``data_dir`` (new or empty; created 0700). Returns the manifest.
    Unpacked beside the target first and moved into place at the end: an archive that turns
    out to be bad leaves nothing behind."""
    _check_target(data_dir)
    if not archive.is_file():
        raise BackupError(f"{archive} is not a file")
    parent = data_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=parent))
    try:
        manifest = _unpack(archive, staging)
        db_path = staging / _DB_MEMBER
        try:
            conn = sqlite3.connect(db_path)
            try:
                check = conn.execute("PRAGMA integrity_check").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise BackupError(f"the database in {archive} cannot be read: {exc}") from None
        if check is None or check[0] != "ok":
            raise BackupError(f"the database in {archive} is damaged: {check}")
        _check_target(data_dir)  # still empty?
        if data_dir.exists():
            data_dir.rmdir()
        staging.rename(data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _unpack(archive: Path, into: Path) -> dict[str, object]:
    os.chmod(into, 0o700)
    (into / STORE_DIR / WAL_DIR).mkdir(parents=True, mode=0o700)
    manifest: dict[str, object] | None = None
    seen: set[str] = set()
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                name = member.name
                if not member.isfile() or not _allowed(name) or name in seen:
                    raise BackupError(
                        f"{archive} is not a hostpulse backup: unexpected entry {name!r}"
                    )
                seen.add(name)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                if name == MANIFEST:
                    manifest = json.loads(source.read(MAX_TOP_FILE_BYTES))
                    continue
                with source, open(into / name, "xb", opener=_private) as fh:
                    shutil.copyfileobj(source, fh, 1 << 20)
                    fh.flush()
                    os.fsync(fh.fileno())
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BackupError(f"{archive} is not a hostpulse backup or is damaged: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} has no manifest of format {FORMAT}: not a hostpulse backup")
    if _DB_MEMBER not in seen:
        raise BackupError(f"{archive} has no {_DB_MEMBER}")
    return manifest


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
