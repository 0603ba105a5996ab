"""What a new host downloads to install the agent: the install script and the agent's wheel.

The server serves its own distribution so that "add host" needs nothing but this server and
the host's Python (plus PyPI, or a mirror named with ``PIP_INDEX_URL``, for psutil and the
other agent dependencies). A running server may have been installed from a wheel, from an sdist
or in editable mode from a checkout; in each case the package's files and its metadata are on
disk, so :class:`AgentWheel` zips them into a wheel once (cached in the data directory, rebuilt
when a file of the package changes) instead of depending on a copy shipped beside it. The
wheel's metadata is the installed one, so pip on the new host installs the base distribution:
the agent, without the server extra.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shlex
import shutil
import threading
import zipfile
from collections.abc import Iterator
from importlib import metadata
from importlib.resources import files
from pathlib import Path

from hostpulse import __version__

logger = logging.getLogger(__name__)

DIST = "hostpulse"
WHEEL_TAG = "py3-none-any"
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_DIST_INFO_FILES = ("METADATA", "entry_points.txt")
_SAFE_URL = re.compile(
    r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?"
)


class InstallError(Exception):
    """The install script or wheel cannot be produced for this request."""


def wheel_filename(version: str = __version__) -> str:
    return f"{DIST}-{version}-{WHEEL_TAG}.whl"


def agent_script(server_url: str, version: str = __version__) -> str:
    """The install script with this server's URL and version filled in.

    ``server_url`` ends up in a shell script run as root, so only a plain http(s) URL
    (host name or address, port, path of safe characters) is accepted."""
    url = server_url.rstrip("/")
    if not _SAFE_URL.fullmatch(url):
        raise InstallError(f"cannot put this server URL into a shell script: {server_url!r}")
    template = files("hostpulse.server").joinpath("agent_install.sh").read_text("utf-8")
    return template.replace("@SERVER_URL@", url).replace("@VERSION@", version)


def install_command(server_url: str, token: str, host_id: str | None) -> str:
    """The one line that installs, enrolls and starts the agent on a new host."""
    url = server_url.rstrip("/")
    args = ["--token", token, *(["--host", host_id] if host_id else [])]
    return f"curl -fsSL {shlex.quote(url + '/install/agent.sh')} | sudo sh -s -- {shlex.join(args)}"


def _package_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(_SKIP_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


class AgentWheel:
    """The installed hostpulse package as a wheel, built once into ``cache_dir``."""

    def __init__(
        self, cache_dir: Path, package_dir: Path | None = None, version: str = __version__
    ) -> None:
        import hostpulse

        self.cache_dir = cache_dir
        self.package_dir = package_dir or Path(hostpulse.__file__).resolve().parent
        self.version = version
        self._lock = threading.Lock()

    @property
    def filename(self) -> str:
        return wheel_filename(self.version)

    def _fingerprint(self, sources: list[Path], dist_info: dict[str, str]) -> str:
        h = hashlib.sha256(self.version.encode())
        for path in sources:
            st = path.stat()
            h.update(
                f"{path.relative_to(self.package_dir)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
            )
        for name, text in dist_info.items():
            h.update(f"{name}\0{text}".encode())
        return h.hexdigest()[:16]

    def _dist_info(self) -> dict[str, str]:
        try:
            dist = metadata.distribution(DIST)
        except metadata.PackageNotFoundError:
            raise InstallError(
                "hostpulse is not installed as a distribution (no metadata)"
            ) from None
        found = {name: dist.read_text(name) for name in _DIST_INFO_FILES}
        missing = [name for name, text in found.items() if text is None]
        if missing:
            raise InstallError(f"the installed metadata lacks {', '.join(missing)}")
        return {name: text for name, text in found.items() if text is not None}

    def path(self) -> Path:
        """The wheel file, built if the cache has none for the package's current files."""
        with self._lock:
            sources = list(_package_files(self.package_dir))
            dist_info = self._dist_info()
            fingerprint = self._fingerprint(sources, dist_info)
            folder = self.cache_dir / f"agent-wheel-{fingerprint}"
            target = folder / self.filename
            if target.is_file():
                return target
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{self.filename}.tmp"
            self._write(tmp, sources, dist_info)
            os.replace(tmp, target)
            for old in self.cache_dir.glob("agent-wheel-*"):
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
            logger.info("built the agent wheel", extra={"path": str(target)})
            return target

    def _write(self, dest: Path, sources: list[Path], dist_info: dict[str, str]) -> None:
        info_dir = f"{DIST}-{self.version}.dist-info"
        entries: list[tuple[str, bytes]] = [
            (f"{DIST}/{p.relative_to(self.package_dir).as_posix()}", p.read_bytes())
            for p in sources
        ]
        wheel_meta = (
            "Wheel-Version: 1.0\n"
            "Generator: hostpulse (from the installed package)\n"
            "Root-Is-Purelib: true\n"
            f"Tag: {WHEEL_TAG}\n"
        )
        entries += [(f"{info_dir}/{name}", text.encode()) for name, text in dist_info.items()]
        entries.append((f"{info_dir}/WHEEL", wheel_meta.encode()))
        record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
        record += f"{info_dir}/RECORD,,\n"
        entries.append((f"{info_dir}/RECORD", record.encode()))
        with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
