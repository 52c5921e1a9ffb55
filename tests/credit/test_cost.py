"""A check's cost does not grow with a customer's history: counted in buffers, not seconds."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from app import clock
from app.credit.sql import SNAPSHOT
from tests.helpers import account, days


async def _snapshot_buffers(url: str, customer_id: str) -> tuple[int, str]:
    """Pages the check's read touches for this customer, and the plan's text."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("ANALYZE open_items")
        await conn.fetchrow(SNAPSHOT, customer_id, "NEW-ORDER", clock.today(), "EUR")  # warm
        raw = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + SNAPSHOT,
                                  customer_id, "NEW-ORDER", clock.today(), "EUR")
    finally:
        await conn.close()
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"], json.dumps(plan)


async def _items(api, customer_id: str, current: int, overdue: int) -> None:
    items = [{"invoice_id": f"{customer_id}-{n}", "amount": "10", "currency": "EUR",
              "due_on": days(30)} for n in range(current)]
    items += [{"invoice_id": f"{customer_id}-late-{n}", "amount": "10", "currency": "EUR",
               "due_on": days(-5)} for n in range(overdue)]
    r = await api.put(f"/v1/customers/{customer_id}/open-items", {"items": items},
                      role="ledger")
    assert r.status_code == 200, r.text


async def test_items_that_are_not_overdue_cost_the_check_nothing(api, database_url):
    await account(api, "SMALL", limit="10000000")
    await account(api, "BIG", limit="10000000")
    await _items(api, "SMALL", current=10, overdue=3)
    await _items(api, "BIG", current=20_000, overdue=3)
    small, _ = await _snapshot_buffers(database_url, "SMALL")
    big, plan = await _snapshot_buffers(database_url, "BIG")
    # 20,000 open items fill well over 100 heap pages; the read may not touch them.
    assert big <= small + 2, f"{big} buffers for 20,000 items vs {small} for 10: {plan}"
    assert "ix_open_items" in plan and "Index Only Scan" in plan, plan
