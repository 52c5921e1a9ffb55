"""Assessment tests: the shared `api` fixture, plus an empty assessments table and the
shipped scorecard (version 1, from migration 0008) as the only version."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db.engine import Database
from tests.api import Api


async def reset_assessments(db: Database) -> None:
    async with db.begin() as conn:
        # The scorecard versions are append-only (migration 0008): as in tests/cleanup.py,
        # the triggers are set aside for this transaction only.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("TRUNCATE assessments, alerts"))
        await conn.execute(text("DELETE FROM scorecards WHERE version > 1"))


@pytest.fixture
async def aapi(api: Api, db: Database) -> Api:
    await reset_assessments(db)
    return api
