"""Regenerate src/hostpulse/protocol/*_pb2.py(i) from proto/; with --check, fail when stale."""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT = ROOT / "src" / "hostpulse" / "protocol"


def generate(dest: Path) -> list[Path]:
    protos = sorted((PROTO_ROOT / "hostpulse" / "v1").glob("*.proto"))
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={dest}",
        f"--pyi_out={dest}",
        *map(str, protos),
    ]
    subprocess.run(cmd, check=True)
    produced = sorted((dest / "hostpulse" / "v1").glob("*_pb2.py*"))
    return produced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        produced = generate(Path(tmp))
        stale = []
        for path in produced:
            target = OUT / path.name
            # generated modules import each other as hostpulse.v1.*; make them package-relative
            text = path.read_text().replace("from hostpulse.v1 import", "from . import")
            path.write_text(text)
            if args.check:
                if not target.exists() or not filecmp.cmp(path, target, shallow=False):
                    stale.append(target.name)
            else:
                shutil.copyfile(path, target)
        if stale:
            print(
                f"generated protobuf code is stale: {', '.join(stale)}; "
                "run: python scripts/gen_proto.py",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
