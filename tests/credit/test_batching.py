"""Checks in flight share statements (app/credit/batching.py) and decide exactly as they
would one by one: the limit holds, every approval is written once with its tally and its
credit-file entry, a guard that no longer holds fails only its own approval, and a batch
that fails as a whole leaves nothing behind."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest
from asyncpg import PostgresError
from sqlalchemy import text

from app import clock
from app.credit import sql
from app.credit.batching import ALONE, Wanted, Written, _answer, _Batches, reader_of, writer_of
from app.credit.plans import CheckPlan
from app.db.engine import Database
from app.reconcile import find_drift
from tests.helpers import account, check, exposure, guarded_plan, invoice, order


async def _no_drift(db: Database) -> None:
    async with db.begin() as conn:
        assert await find_drift(conn) == []


async def _together(db: Database, *plans: CheckPlan) -> list[Written]:
    """The plans' writes, sent by the writer as one batch."""
    writer = writer_of(db)
    writer.batches.clear()
    written = await asyncio.gather(*(writer.write(p) for p in plans))
    assert writer.batches == [len(plans)]
    return list(written)


async def test_checks_in_flight_share_statements_and_keep_every_limit(api, app):
    customers = [f"B{n:02d}" for n in range(12)]
    for customer_id in customers:
        await account(api, customer_id, limit="1000")
    reader, writer = reader_of(app.state.db), writer_of(app.state.db)
    reader.batches.clear()
    writer.batches.clear()
    # Three 400 checks per customer against a 1,000 limit: two fit, the third must hold.
    results = await asyncio.gather(*(
        check(api, f"{c}-{k}", "400", customer_id=c) for k in range(3) for c in customers))
    assert max(reader.batches) > 1, reader.batches
    assert max(writer.batches) > 1, writer.batches
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
    async with app.state.db.autocommit() as conn:
        held_events = (await conn.execute(text(
            "SELECT data->'decisions'->0->>'decision_id' FROM events"
            " WHERE type = 'order.held' AND customer_id LIKE 'B__'"))).scalars().all()
    assert sorted(held_events) == sorted(r["decision_id"] for r in results
                                         if r["outcome"] == "hold"), "each hold one event"
    await _no_drift(app.state.db)


async def test_an_identical_request_inside_a_batch_is_replayed_not_written_twice(api, app):
    customers = [f"S{n:02d}" for n in range(8)]
    for customer_id in customers:
        await account(api, customer_id, limit="100000")
    body = {"order_id": "SAME-B", "customer_id": "S00", "amount": "700", "currency": "EUR"}
    responses = await asyncio.gather(
        *(api.post("/v1/credit-checks", body, role="order-entry") for _ in range(4)),
        *(api.post("/v1/credit-checks", {**body, "order_id": f"OTHER-{c}", "customer_id": c},
                   role="order-entry") for c in customers for _ in range(1)))
    same, others = responses[:4], responses[4:]
    assert sorted(r.status_code for r in same) == [200, 200, 200, 201]
    assert len({r.json()["decision_id"] for r in same}) == 1
    assert [r.status_code for r in others] == [201] * len(customers)
    assert (await exposure(api, "S00"))["open_orders"] == "1400.00"
    for customer_id in customers[1:]:
        assert (await exposure(api, customer_id))["open_orders"] == "700.00"
    await _no_drift(app.state.db)


async def test_a_stale_guard_fails_only_its_own_approval(api, app):
    db = app.state.db
    await account(api, "G1", limit="1000")
    await account(api, "G2", limit="1000")
    stale = await guarded_plan(db, "G1", "G1-A", "600")
    fresh = await guarded_plan(db, "G2", "G2-A", "600")
    assert sql.batchable(stale) and sql.batchable(fresh)
    await account(api, "G1", limit="500")  # new terms: the approval of 600 no longer stands
    written = await _together(db, stale, fresh)
    assert written[0] is None
    assert isinstance(written[1], sql.Landed)
    assert written[1].exposure.total == D("0")
    assert (await exposure(api, "G1"))["open_orders"] == "0.00"
    assert (await exposure(api, "G2"))["open_orders"] == "600.00"
    r = await api.get("/v1/orders/G1-A")
    assert r.status_code == 404, "an approval whose guard failed leaves nothing behind"
    await _no_drift(db)


async def test_a_batch_that_fails_as_a_whole_writes_nothing_and_each_goes_alone(api, app):
    db = app.state.db
    await account(api, "F1", limit="1000")
    await account(api, "F2", limit="1000")
    await check(api, "F1-DONE", "100", customer_id="F1")
    # A plan for an order id that is already stored: its INSERT fails the whole statement.
    duplicate = await guarded_plan(db, "F1", "F1-DONE", "100")
    ok = await guarded_plan(db, "F2", "F2-A", "100")
    written = await _together(db, duplicate, ok)
    assert written == [ALONE, ALONE]
    assert (await api.get("/v1/orders/F2-A")).status_code == 404
    assert (await exposure(api, "F1"))["open_orders"] == "100.00"
    assert (await exposure(api, "F2"))["open_orders"] == "0.00"
    await _no_drift(db)
    # Alone, through the check itself: the new order is written, the stored one replayed.
    assert (await check(api, "F2-A", "100", customer_id="F2"))["outcome"] == "approve"
    await check(api, "F1-DONE", "100", customer_id="F1", expect=200)
    assert (await exposure(api, "F2"))["open_orders"] == "100.00"
    await _no_drift(db)


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


async def test_a_waiting_check_whose_deadline_passed_is_not_written(api, app):
    n = 1
    db = app.state.db
    await account(api, f"D{n}", limit="1000")
    await account(api, f"E{n}", limit="1000")
    first = await guarded_plan(db, f"E{n}", f"E{n}-A", "100")
    late = await guarded_plan(db, f"D{n}", f"D{n}-A", "100")
    writer = writer_of(db)
    going = asyncio.ensure_future(writer.write(first))
    waiting = asyncio.ensure_future(writer.write(late))
    await asyncio.sleep(0)  # both queued; the sender has not run yet
    waiting.cancel()
    assert isinstance(await going, sql.Landed)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await api.get(f"/v1/orders/D{n}-A")).status_code == 404
    await _no_drift(db)


async def test_one_customers_approvals_in_a_batch_land_one_after_another(api, app):
    db = app.state.db
    await account(api, "H1", limit="1000000")
    plans = [await guarded_plan(db, "H1", f"H1-{n}", "100") for n in range(5)]
    written = await _together(db, *plans)
    assert [w.exposure.open_orders for w in written if isinstance(w, sql.Landed)] == [
        D(0), D(100), D(200), D(300), D(400)]
    assert (await exposure(api, "H1"))["open_orders"] == "500.00"
    for n, landed_on in enumerate(("0.00", "100.00", "200.00", "300.00", "400.00")):
        stored = await order(api, f"H1-{n}")
        entry = stored["decisions"][0]
        assert entry["exposure"]["open_orders"] == landed_on, entry
    async with db.autocommit() as conn:
        tally = (await conn.exec_driver_sql(
            "SELECT checks, amount FROM check_days WHERE customer_id = 'H1'")).all()
    assert [(c, a) for c, a in tally] == [(5, D("500.00"))]
    await _no_drift(db)


async def test_one_customers_approvals_that_do_not_all_fit_all_go_alone(api, app):
    db = app.state.db
    await account(api, "H2", limit="1000")
    plans = [await guarded_plan(db, "H2", f"H2-{n}", "400") for n in range(3)]  # each fits alone
    written = await _together(db, *plans)
    assert written == [None, None, None], "the third does not fit after the first two"
    assert (await exposure(api, "H2"))["open_orders"] == "0.00"
    await _no_drift(db)


async def test_a_hold_whose_open_orders_moved_fails_only_its_own(api, app):
    db = app.state.db
    await account(api, "G3", limit="1000")
    await account(api, "G4", limit="0")  # no credit limit: prepay
    await check(api, "G3-A", "800", customer_id="G3")
    stale = await guarded_plan(db, "G3", "G3-H", "250")  # held on open orders of 800
    fresh = await guarded_plan(db, "G4", "G4-P", "10")
    assert (stale.status, fresh.status) == ("held", "prepay")
    assert sql.batchable(stale) and sql.batchable(fresh)
    await check(api, "G3-B", "100", customer_id="G3")  # open orders now 900
    written = await _together(db, stale, fresh)
    assert written[0] is None
    assert isinstance(written[1], sql.Landed)
    assert (await api.get("/v1/orders/G3-H")).status_code == 404
    assert (await exposure(api, "G3"))["held_count"] == 0
    assert (await order(api, "G4-P"))["status"] == "prepay"
    async with db.autocommit() as conn:
        events = (await conn.execute(text(
            "SELECT customer_id FROM events WHERE customer_id IN ('G3', 'G4')"
            " AND type LIKE 'order.%'"))).all()
    assert [e.customer_id for e in events] == ["G4"], "no event for a hold that did not land"
    await _no_drift(db)


async def test_a_hold_behind_its_customers_approval_in_a_batch_is_decided_again(api, app):
    """Both decided on one snapshot: once the approval ahead of it lands, the open orders
    the hold saw are gone, as they would be one by one; the customer's decisions land
    together or not at all, so both are decided again under the row lock."""
    db = app.state.db
    await account(api, "H4", limit="1000")
    approve = await guarded_plan(db, "H4", "H4-A", "300")
    hold = await guarded_plan(db, "H4", "H4-H", "1050")
    assert (approve.status, hold.status) == ("approved", "held")
    written = await _together(db, approve, hold)
    assert written == [None, None]
    assert (await exposure(api, "H4"))["open_orders"] == "0.00"
    await _no_drift(db)
    # Through the check itself each is decided again and lands.
    assert (await check(api, "H4-H", "1050", customer_id="H4"))["outcome"] == "hold"
    assert (await check(api, "H4-A", "300", customer_id="H4"))["outcome"] == "approve"
    after = await exposure(api, "H4")
    assert (after["open_orders"], after["held_count"]) == ("300.00", 1)
    await _no_drift(db)


async def test_one_customers_holds_decided_on_different_open_orders_do_not_land(api, app):
    db = app.state.db
    await account(api, "H5", limit="1000")
    first = await guarded_plan(db, "H5", "H5-1", "1050")  # held on open orders of 0
    await check(api, "H5-A", "100", customer_id="H5")
    second = await guarded_plan(db, "H5", "H5-2", "960")  # held on open orders of 100
    assert (first.status, second.status) == ("held", "held")
    r = await api.post("/v1/orders/H5-A/cancel", role="order-entry")
    assert r.status_code == 200, r.text
    # Open orders are 0 again: the first hold's figure, not the second's.
    assert await _together(db, first, second) == [None, None]
    assert (await exposure(api, "H5"))["held_count"] == 0
    # Alone, the first still stands and the second does not: only the figures differed.
    assert isinstance((await _together(db, first))[0], sql.Landed)
    assert await _together(db, second) == [None]
    await _no_drift(db)


class _Gated(_Batches[str, str]):
    """Batches whose statement is an echo that waits for `gate`: when the senders finish is
    up to the test, not to a database."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # never touches a database
        self.gate = asyncio.Event()

    async def _send(self, batch: list[Wanted[str, str]]) -> None:
        await self.gate.wait()
        for wanted in batch:
            _answer(wanted, wanted.item)


async def test_a_check_queued_as_the_last_senders_finish_is_still_sent():
    """The lost wake-up that answered checks 503 under tests/trust/test_replicas.py: both
    senders end in one step of the loop; the first check they answer queues another at once,
    before a done callback could have told the batcher they are gone. It must get a sender."""
    gated = _Gated()

    async def first_then_another() -> str:
        await gated._submit("A")
        return await gated._submit("C")  # no await in between: the senders just ended

    a_then_c = asyncio.create_task(first_then_another())
    for _ in range(3):
        await asyncio.sleep(0)  # the first sender takes A and waits at the gate
    b = asyncio.create_task(gated._submit("B"))
    for _ in range(3):
        await asyncio.sleep(0)  # the second sender takes B and waits at the gate
    assert gated.batches == [1, 1]
    gated.gate.set()  # both senders answer and end in the same step
    assert await asyncio.wait_for(a_then_c, 2) == "C"
    assert await b == "B"
    assert gated.batches == [1, 1, 1]
