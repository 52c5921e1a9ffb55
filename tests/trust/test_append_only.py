"""The audit tables cannot be emptied wholesale: TRUNCATE is refused like DELETE."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.helpers import account


@pytest.mark.parametrize("table", ["credit_file", "policy_changes"])
async def test_truncate_of_an_audit_table_is_refused(api, db, table):
    await account(api, limit="1000")
    await api.put("/v1/policies/B", {"prepay_required": False, "hold_band": "0.2",
                                     "max_days_past_due": 30, "prepay_days_past_due": 90,
                                     "overdue_tolerance": "0"})
    with pytest.raises(DBAPIError, match=f"{table} is append-only"):
        async with db.begin() as conn:
            await conn.execute(text(f"TRUNCATE {table}"))
    async with db.begin() as conn:
        assert await conn.scalar(text(f"SELECT count(*) FROM {table}")) > 0

