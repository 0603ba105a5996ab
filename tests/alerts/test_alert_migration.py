"""The Alembic revision creates exactly the tables hostpulse.alerts.models declares, on SQLite
and on PostgreSQL."""

from __future__ import annotations

from revision_check import check_revision, load_revision

from hostpulse.alerts import models


def test_migration_matches_models_and_downgrades_cleanly(database_url: str) -> None:
    rev = load_revision("0100_alerts")
    assert rev.revision == "0100_alerts"
    check_revision(rev, models.metadata, database_url)
