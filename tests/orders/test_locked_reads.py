"""A decision taken under the account's row lock sees everything as of the lock: a change
that commits while the decision waits for the lock is in it, overdue facts included."""

from __future__ import annotations

import asyncio
import datetime as dt

from app import clock
from app.credit.repository import load_locked
from app.customers.repository import apply_deltas
from app.receivables import repository as items
from tests.helpers import account, check, days


async def test_a_dispatch_waiting_for_the_lock_sees_an_overdue_item_committed_meanwhile(
        api, db):
    await account(api, "L1", "10000")
    assert (await check(api, "L-1", "100", "L1"))["outcome"] == "approve"
    now = clock.now()
    async with db.begin() as conn:
        assert await load_locked(conn, "L1", clock.today()) is not None  # hold the row
        dispatch = asyncio.create_task(
            api.post("/v1/orders/L-1/dispatch-check", role="warehouse"))
        await asyncio.sleep(0.3)  # the dispatch is now waiting for the row lock
        assert not dispatch.done()
        # What an ERP snapshot would bring: an item 95 days past due.
        await items.insert_items(conn, [{
            "customer_id": "L1", "invoice_id": "L-OLD", "amount": 500, "open_amount": 500,
            "currency": "EUR", "due_on": clock.today() - dt.timedelta(days=95),
            "issued_on": None, "order_id": None, "origin": "snapshot",
            "reservation_consumed": 0, "response": None, "created_at": now,
            "updated_at": now}])
        await apply_deltas(conn, "L1", now, receivables=500, ledger_changed=True)
    r = await dispatch
    assert r.status_code == 200, r.text
    decision = r.json()
    assert decision["outcome"] == "prepay", decision
    assert decision["reasons"][0]["code"] == "SEVERELY_OVERDUE"
    assert decision["exposure"]["open_receivables"] == "500.00"
    assert days(0) == clock.today().isoformat()
