"""The Alembic revision 0300_dashboards creates exactly the table
hostpulse.server.dashboards.models declares, chained after the auth revision, and downgrades
cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from revision_check import check_revision, load_revision

from hostpulse.server.dashboards import models


def test_migration_matches_models_and_downgrades_cleanly(database_url: str) -> None:
    rev = load_revision("0300_dashboards")
    assert (rev.revision, rev.down_revision) == ("0300_dashboards", "0200_auth")
    check_revision(rev, models.metadata, database_url)
