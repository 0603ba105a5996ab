"""The Alembic revision 0400_tsdb creates exactly the tables of hostpulse.store.tsdb.schema
(the TSDB backend's host and series registry and process lists), chained after
0310_token_hosts, and downgrades cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from revision_check import check_revision, load_revision

from hostpulse.store.tsdb import schema


def test_migration_matches_schema_and_downgrades_cleanly(database_url: str) -> None:
    rev = load_revision("0400_tsdb")
    assert (rev.revision, rev.down_revision) == ("0400_tsdb", "0310_token_hosts")
    check_revision(rev, schema.metadata, database_url)
