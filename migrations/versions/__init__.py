"""The revisions; Alembic loads each file itself (it skips this one)."""
