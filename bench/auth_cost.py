"""What authentication costs per request: the agent-key check both ingest paths run (SHA-256 of
the key, a dict lookup once cached, the rate-limit counter), a user's access-token check (JWT
HS256 verify, cached role, rate-limit counter), and a login (argon2id verify), against a real
SQLite file. Reference in the same run: one SHA-256 of a key alone.

    python bench/auth_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_doc, write_json

from hostpulse.server.auth.repository import AuthRepository
from hostpulse.server.auth.roles import Role
from hostpulse.server.auth.service import AuthService
from hostpulse.server.auth.settings import AuthConfig
from hostpulse.store.db import make_engine


async def measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp}/auth.db")
        repo = AuthRepository(engine)
        await repo.create_tables()
        big = 10**12
        auth = AuthService(repo, b"s" * 64, AuthConfig(agent_rate_limit=big, user_rate_limit=big))
        key = (await auth.agents.issue("web-1")).key
        await auth.users.create("alice", "alice-password", Role.viewer)
        tokens = await auth.users.login("alice", "alice-password", "bench")
        header = f"Bearer {key}"
        await auth.ingest_host(header)
        out: dict[str, float] = {}

        async def per_call(name: str, fn: object, rounds: int = 5) -> None:
            runs = []
            for _ in range(rounds):
                t = time.perf_counter()
                for _ in range(n):
                    await fn()  # type: ignore[operator]
                runs.append((time.perf_counter() - t) / n * 1e6)
            out[name] = statistics.median(runs)

        await per_call("agent key check (ingest), us", lambda: auth.ingest_host(header))
        await per_call("access token check, us", lambda: auth.user(tokens.access_token))

        async def sha() -> None:
            hashlib.sha256(key.encode()).hexdigest()

        await per_call("reference: one SHA-256 of a key, us", sha)
        logins = []
        for _ in range(10):
            t = time.perf_counter()
            await auth.users.login("alice", "alice-password", "bench")
            logins.append((time.perf_counter() - t) * 1000)
        out["login (argon2id verify), ms"] = statistics.median(logins)
        await engine.dispose()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    res = asyncio.run(measure(args.calls))
    if args.json is not None:
        write_json(args.json, res)
    lines = [f"- {name}: median {value:.2f}" for name, value in res.items()]
    print("\n".join(lines))
    if not args.no_doc:
        append_doc(
            "Authentication cost per request",
            "python bench/auth_cost.py",
            f"Medians of 5 runs of {args.calls:,} calls each (login: of 10).\n\n"
            + "\n".join(lines),
        )


if __name__ == "__main__":
    main()
