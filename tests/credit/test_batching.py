"""Checks in flight share their reads (app/credit/batching.py) and decide exactly as they
would one by one: the limit holds, every approval is written once with its tally and its
credit-file entry, a batched read equals reads one by one, a refused read fails only its own
check, and a check whose deadline passed while it waited is not read."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest
from asyncpg import PostgresError

from app import clock
from app.credit import sql
from app.credit.batching import reader_of
from app.db.engine import Database
from app.reconcile import find_drift
from tests.helpers import account, check, exposure, invoice, order


async def _no_drift(db: Database) -> None:
    async with db.begin() as conn:
        assert await find_drift(conn) == []


async def test_checks_in_flight_share_statements_and_keep_every_limit(api, app):
    customers = [f"B{n:02d}" for n in range(12)]
    for customer_id in customers:
        await account(api, customer_id, limit="1000")
    reader = reader_of(app.state.db)
    reader.batches.clear()
    # Three 400 checks per customer against a 1,000 limit: two fit, the third must hold.
    results = await asyncio.gather(*(
        check(api, f"{c}-{k}", "400", customer_id=c) for k in range(3) for c in customers))
    assert max(reader.batches) > 1, reader.batches
    for customer_id in customers:
        mine = [r for r in results if r["customer_id"] == customer_id]
        assert sorted(r["outcome"] for r in mine) == ["approve", "approve", "hold"], mine
        for r in mine:
            if r["outcome"] == "approve":
                assert D(r["exposure"]["total"]) + D(r["amount"]) <= D("1000"), r
        assert (await exposure(api, customer_id))["open_orders"] == "800.00"
    for r in results:
        stored = await order(api, r["order_id"])
        assert [d["decision_id"] for d in stored["decisions"]] == [r["decision_id"]]
    await _no_drift(app.state.db)


async def test_an_identical_request_inside_a_batch_is_replayed_not_written_twice(api, app):
    customers = [f"S{n:02d}" for n in range(8)]
    for customer_id in customers:
        await account(api, customer_id, limit="100000")
    body = {"order_id": "SAME-B", "customer_id": "S00", "amount": "700", "currency": "EUR"}
    responses = await asyncio.gather(
        *(api.post("/v1/credit-checks", body, role="order-entry") for _ in range(4)),
        *(api.post("/v1/credit-checks", {**body, "order_id": f"OTHER-{c}", "customer_id": c},
                   role="order-entry") for c in customers))
    same, others = responses[:4], responses[4:]
    assert sorted(r.status_code for r in same) == [200, 200, 200, 201]
    assert len({r.json()["decision_id"] for r in same}) == 1
    assert [r.status_code for r in others] == [201] * len(customers)
    assert (await exposure(api, "S00"))["open_orders"] == "1400.00"
    for customer_id in customers[1:]:
        assert (await exposure(api, customer_id))["open_orders"] == "700.00"
    await _no_drift(app.state.db)



async def test_batched_reads_equal_reads_one_by_one(api, app):
    db = app.state.db
    await account(api, "R1", limit="1000")
    await account(api, "R2", limit="5000")
    await invoice(api, "R2-INV", "300", customer_id="R2", due_in=-10)  # overdue
    await check(api, "R2-OLD", "200", customer_id="R2")
    wanted = [("R1", "R1-X"), ("R2", "R2-OLD"), ("R2", "R2-NEW"), ("NOBODY", "N-1")]
    today = clock.today()
    reader = reader_of(db)
    reader.batches.clear()
    together = await asyncio.gather(*(reader.read(c, o, today, "EUR") for c, o in wanted))
    assert reader.batches == [4]  # all four queued before the sender ran: one statement
    async with db.driver() as pg:
        alone = [await sql.read(pg, c, o, today, "EUR", lock=False) for c, o in wanted]
    assert together == alone
    assert together[1].existing is not None and together[2].existing is None
    assert together[3].state is None


async def test_a_read_the_server_refuses_fails_only_its_own_check(app):
    db = app.state.db
    today = clock.today()
    reader = reader_of(db)
    reader.batches.clear()
    results: list[Any] = await asyncio.gather(
        reader.read("R-FIRST", "o", today, "EUR"),
        reader.read("ok-1", "o", today, "EUR"),
        reader.read("bad\x00id", "o", today, "EUR"),
        reader.read("ok-2", "o", today, "EUR"), return_exceptions=True)
    assert reader.batches == [4]
    assert isinstance(results[2], PostgresError), results
    assert all(isinstance(r, sql.Read) and r.state is None for r in results[:2] + results[3:])


async def test_a_waiting_check_whose_deadline_passed_is_not_read(app):
    today = clock.today()
    reader = reader_of(app.state.db)
    reader.batches.clear()
    going = asyncio.ensure_future(reader.read("W1", "o", today, "EUR"))
    waiting = asyncio.ensure_future(reader.read("W2", "o", today, "EUR"))
    await asyncio.sleep(0)  # both queued; no sender has run yet
    waiting.cancel()
    assert isinstance(await going, sql.Read)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert reader.batches == [1], "the cancelled check was not sent"
