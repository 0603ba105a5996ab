"""The Alembic revisions 0200_auth and 0310_token_hosts create exactly the tables
hostpulse.server.auth.models declares (0200 after the alerts revision, 0310 after the
dashboards one), and downgrade
cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from revision_check import check_revision, load_revision

from hostpulse.server.auth import models


def test_migration_matches_models_and_downgrades_cleanly(database_url: str) -> None:
    rev = load_revision("0200_auth")
    assert (rev.revision, rev.down_revision) == ("0200_auth", "0100_alerts")
    hosts = load_revision("0310_token_hosts")
    assert (hosts.revision, hosts.down_revision) == ("0310_token_hosts", "0300_dashboards")
    check_revision([rev, hosts], models.metadata, database_url)
