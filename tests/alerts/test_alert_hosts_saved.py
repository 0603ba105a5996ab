"""The hosts' last-seen times are saved every 30 s, every host in one statement: a fleet of
10,000 hosts is 50,000 values, past PostgreSQL's 32,767 parameters per statement had they
been one INSERT with a VALUES list."""

from __future__ import annotations

import asyncio

from hostpulse.alerts.repository import AlertRepository
from hostpulse.alerts.types import HostSeen
from hostpulse.store.db import make_engine

HOSTS = 7_000  # x 5 columns: over PostgreSQL's limit for one statement's parameters


def test_every_host_is_saved_and_saved_again(database_url: str) -> None:
    async def main() -> None:
        engine = make_engine(database_url)
        repo = AlertRepository(engine)
        await repo.create_tables()
        try:
            hosts = [
                HostSeen(f"host-{i:05d}", {"env": "prod", "i": str(i)}, 1_000 + i, 5000, 900 + i)
                for i in range(HOSTS)
            ]
            await repo.save_state([], [], [], hosts)
            for h in hosts[::2]:  # seen again: the rows are updated, not added
                h.last_seen_ms += 30_000
                h.labels = {**h.labels, "env": "staging"}
            await repo.save_state([], [], [], hosts)
            _, saved = await repo.load_state()
            by_host = {h.host: h for h in saved}
            assert len(saved) == HOSTS
            assert by_host["host-00000"].last_seen_ms == 31_000
            assert by_host["host-00000"].labels == {"env": "staging", "i": "0"}
            assert by_host["host-00001"].last_seen_ms == 1_001
            assert by_host["host-00001"].labels == {"env": "prod", "i": "1"}
            assert by_host[f"host-{HOSTS - 1:05d}"].last_ts_ms == 900 + HOSTS - 1
        finally:
            await engine.dispose()

    asyncio.run(main())
