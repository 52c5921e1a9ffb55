"""What the check's read (app/credit/sql.py SNAPSHOT) costs PostgreSQL for one customer."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from app import clock
from app.credit.sql import SNAPSHOT


async def snapshot_buffers(url: str, customer_id: str, *, prepare: tuple[str, ...]
                           ) -> tuple[int, str]:
    """Pages the check's read touches for this customer, and the plan's text; `prepare`
    runs first (ANALYZE, or VACUUM as autovacuum would)."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        for statement in prepare:
            await conn.execute(statement)
        args = (customer_id, "NEW-ORDER", clock.today(), "EUR")
        await conn.fetchrow(SNAPSHOT, *args)  # warm
        raw = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + SNAPSHOT, *args)
    finally:
        await conn.close()
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"], json.dumps(plan)
