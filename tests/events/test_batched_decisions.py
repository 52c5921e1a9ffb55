"""Holds and prepays written by one batched statement (app/credit/batching.py) tell the
neighbours exactly as they would one by one: each its event, numbered in the order its
customer's checks came, each event's webhook delivery, and the NOTIFY that wakes the
dispatchers at commit; then each delivered once to a real receiver, and no aggregate drifts
from its line items."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from sqlalchemy import text

from app.credit import sql
from app.credit.batching import writer_of
from app.credit.plans import CheckPlan
from app.db.engine import Database
from app.events.outbox import WEBHOOKS_CHANNEL
from app.reconcile import find_drift
from tests.events.conftest import create_webhook, dispatcher
from tests.events.receiver import receiver
from tests.helpers import account, exposure, guarded_plan, order


async def _plan(db: Database, customer_id: str, order_id: str, amount: str) -> CheckPlan:
    plan = await guarded_plan(db, customer_id, order_id, amount)
    assert sql.batchable(plan), plan
    return plan


async def test_holds_and_prepays_in_one_batch_are_written_and_delivered_as_alone(
        eapi, edb, events_url):
    await account(eapi, "BH1", "1000")
    await account(eapi, "BP1", "0")  # no credit limit: prepay
    await account(eapi, "BA1", "100000")
    plans = [await _plan(edb, "BH1", "BH1-1", "1050"), await _plan(edb, "BA1", "BA1-1", "100"),
             await _plan(edb, "BH1", "BH1-2", "1020"), await _plan(edb, "BP1", "BP1-1", "10")]
    assert [p.status for p in plans] == ["held", "approved", "held", "prepay"]
    woken: list[str] = []
    listener = await asyncpg.connect(events_url.replace("postgresql+asyncpg", "postgresql"))
    await listener.add_listener(WEBHOOKS_CHANNEL, lambda *_args: woken.append("woke"))
    try:
        with receiver() as r:
            await create_webhook(eapi, r.url, ["order.held", "order.prepay"])
            writer = writer_of(edb)
            writer.batches.clear()
            written = await asyncio.gather(*(writer.write(p) for p in plans))
            assert writer.batches == [4]
            assert all(isinstance(w, sql.Landed) for w in written), written
            for _ in range(100):
                if woken:
                    break
                await asyncio.sleep(0.02)
            assert woken, "a NOTIFY at commit, for the batch's deliveries"

            async with edb.autocommit() as conn:
                events = (await conn.execute(text(
                    "SELECT event_id, type, customer_id, data FROM events ORDER BY position"
                ))).all()
                deliveries = (await conn.execute(text(
                    "SELECT event_id FROM webhook_deliveries WHERE status = 'pending'"
                ))).scalars().all()
            expected = [p for p in plans if p.status != "approved"]
            assert [(e.type, e.customer_id) for e in events] == [
                ("order.held", "BH1"), ("order.held", "BH1"), ("order.prepay", "BP1")]
            for event, plan in zip(events, expected, strict=True):
                # The same data the single-row write would have stored for it.
                assert event.data == json.loads(sql._event(plan)[2] or "null")
                assert event.data["decisions"][0]["decision_id"] == plan.entry_id
            assert sorted(deliveries) == sorted(e.event_id for e in events)

            done = await dispatcher(edb).drain()
            assert done.delivered == 3, done
            assert sorted(r.ids()) == sorted(e.event_id for e in events), "each once"
    finally:
        await listener.close()

    both_held = await exposure(eapi, "BH1")
    assert (both_held["held_count"], both_held["held_orders"]) == (2, "2070.00")
    assert both_held["open_orders"] == "0.00"
    assert (await exposure(eapi, "BP1"))["held_count"] == 0, "a prepay holds nothing"
    assert (await exposure(eapi, "BA1"))["open_orders"] == "100.00"
    for plan in plans:
        stored = await order(eapi, plan.order_id)
        assert stored["status"] == plan.status
        assert [d["decision_id"] for d in stored["decisions"]] == [plan.entry_id]
    async with edb.begin() as conn:
        assert await find_drift(conn) == []
