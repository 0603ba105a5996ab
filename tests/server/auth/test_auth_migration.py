"""The Alembic revision 0200_auth creates exactly the tables hostpulse.server.auth.models
declares, chained after the alerts revision, and downgrades cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from revision_check import check_revision, load_revision

from hostpulse.server.auth import models


def test_migration_matches_models_and_downgrades_cleanly(database_url: str) -> None:
    rev = load_revision("0200_auth")
    assert (rev.revision, rev.down_revision) == ("0200_auth", "0100_alerts")
    check_revision(rev, models.metadata, database_url)
