"""The migrations build exactly the schema the code declares (app/db/tables.py)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import app.db.tables  # noqa: F401 - registers every table
from app.db.columns import metadata


def _diff(sync_conn):
    context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
    return compare_metadata(context, metadata)


async def test_the_migrated_schema_matches_the_declared_tables(db):
    async with db.autocommit() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], "\n".join(map(str, diff))
