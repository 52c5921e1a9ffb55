"""A check's cost does not grow with a customer's history: counted in buffers, not seconds."""

from __future__ import annotations

from tests.helpers import account, days
from tests.plans import snapshot_buffers


async def _snapshot_buffers(url: str, customer_id: str) -> tuple[int, str]:
    return await snapshot_buffers(url, customer_id, prepare=("ANALYZE open_items",))


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
