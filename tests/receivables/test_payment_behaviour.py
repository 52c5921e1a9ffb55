"""GET /v1/customers/{id}/payment-behaviour over the real ledger, the payment index kept on the
account by every event (and by the sweep), and reconcile of the behaviour aggregates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text

from app import clock
from app.db.engine import Database
from app.receivables.behaviour_service import behaviour_of, refresh_payment_index
from app.reconcile import find_drift, repair
from tests.api import Api
from tests.helpers import account, check, days, exposure, invoice, pay


async def behaviour(api: Api, customer_id: str = "C1", role: str = "order-entry"
                    ) -> dict[str, Any]:
    r = await api.get(f"/v1/customers/{customer_id}/payment-behaviour", role=role)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_unknown_customer_is_404_and_any_role_may_read(api: Api) -> None:
    r = await api.get("/v1/customers/NOPE/payment-behaviour", role="warehouse")
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found", r.text
    await account(api)
    for role in ("order-entry", "warehouse", "ledger", "controller"):
        assert (await behaviour(api, role=role))["payment_index"] is None
    r = await api.get("/v1/customers/C1/payment-behaviour", role=None)
    assert r.status_code == 401


async def test_a_new_account_has_nothing_to_weigh(api: Api) -> None:
    await account(api)
    assert await behaviour(api) == {
        "payment_index": None, "days_beyond_terms": None, "average_days_to_pay": None,
        "paid_on_time_share": None, "max_days_late": "0.00", "amount_paid_365d": "0.00",
        "dso_days": None, "best_possible_dso_days": None, "average_days_delinquent": None,
        "invoiced_90d": "0.00", "invoiced_365d": "0.00", "highest_monthly_invoiced": "0.00"}


async def test_an_early_payment(api: Api) -> None:
    await account(api)
    await invoice(api, "I1", "100", due_in=30, issued_on=days(-10))
    await pay(api, "P1", "100", invoice_id="I1")
    got = await behaviour(api)
    assert got == {
        "payment_index": 100, "days_beyond_terms": "-30.00", "average_days_to_pay": "10.00",
        "paid_on_time_share": "1.0000", "max_days_late": "0.00", "amount_paid_365d": "100.00",
        "dso_days": "0.00", "best_possible_dso_days": "0.00",
        "average_days_delinquent": "0.00", "invoiced_90d": "100.00",
        "invoiced_365d": "100.00", "highest_monthly_invoiced": "100.00"}
    assert (await exposure(api))["payment_index"] == 100


async def test_a_partial_late_payment_and_the_overdue_rest(api: Api) -> None:
    await account(api)
    await invoice(api, "A", "100", due_in=-20, issued_on=days(-50))
    await invoice(api, "B", "200", due_in=10, issued_on=days(-20))
    await pay(api, "P1", "40", invoice_id="A")
    got = await behaviour(api)
    # (40 x 20 paid late + 60 x 20 still open and overdue) / 100 = 20 days -> 80 - 30 = 60
    assert got["days_beyond_terms"] == "20.00" and got["payment_index"] == 60
    assert got["average_days_to_pay"] == "50.00" and got["paid_on_time_share"] == "0.0000"
    assert got["max_days_late"] == "20.00" and got["amount_paid_365d"] == "40.00"
    # 260 open of 300 invoiced in 90 days; 200 of it not yet due
    assert (got["dso_days"], got["best_possible_dso_days"], got["average_days_delinquent"]) \
        == ("78.00", "60.00", "18.00")
    # the account carries it, and so does every decision
    assert (await exposure(api))["payment_index"] == 60
    decision = await check(api, "O1", "10")
    assert decision["payment_index"] == 60


async def test_credit_notes_and_unapplied_credit_weigh_nothing(api: Api) -> None:
    await account(api)
    snapshot = {"items": [
        {"invoice_id": "I1", "amount": "100", "currency": "EUR", "due_on": days(-10)},
        {"invoice_id": "CN1", "amount": "-30", "currency": "EUR", "due_on": days(-40)}]}
    r = await api.put("/v1/customers/C1/open-items", snapshot, role="ledger")
    assert r.status_code == 200, r.text
    # snapshot items are not sales; the overdue credit note weighs nothing: 10 days late
    got = await behaviour(api)
    assert got["days_beyond_terms"] == "10.00" and got["payment_index"] == 70
    assert got["invoiced_365d"] == "0.00" and got["dso_days"] is None
    assert (await exposure(api))["payment_index"] == 70
    # 130 pays I1 (100, 10 days late) and leaves 30 unapplied; the credit note stays open
    paid = await pay(api, "P1", "130")
    assert paid["unapplied"] == "30.00", paid
    got = await behaviour(api)
    assert got["days_beyond_terms"] == "10.00" and got["amount_paid_365d"] == "100.00"
    assert got["max_days_late"] == "10.00" and got["average_days_to_pay"] is None
    # a payment naming the credit note applies nothing and changes nothing
    await pay(api, "P2", "5", invoice_id="CN1")
    assert await behaviour(api) == got


async def test_the_window_is_the_last_365_days_by_received_on(api: Api) -> None:
    await account(api)
    await invoice(api, "OLD", "100", due_in=-400, issued_on=days(-420))
    await invoice(api, "EDGE", "50", due_in=-380, issued_on=days(-390))
    await pay(api, "P-out", "100", invoice_id="OLD", received_on=days(-365))  # 35 days late
    await pay(api, "P-in", "50", invoice_id="EDGE", received_on=days(-364))  # 16 days late
    got = await behaviour(api)
    assert got["amount_paid_365d"] == "50.00" and got["days_beyond_terms"] == "16.00"
    assert got["max_days_late"] == "16.00" and got["average_days_to_pay"] == "26.00"
    # invoiced by issued_on: neither is in the window
    assert got["invoiced_365d"] == "0.00" and got["dso_days"] is None


async def test_invoiced_figures_by_invoice_date(api: Api) -> None:
    await account(api)
    await invoice(api, "NOW", "10", due_in=30)  # no issued_on: the day it is posted
    await invoice(api, "D89", "20", due_in=30, issued_on=days(-89))
    await invoice(api, "D90", "40", due_in=30, issued_on=days(-90))
    await invoice(api, "D364", "80", due_in=30, issued_on=days(-364))
    await invoice(api, "D365", "160", due_in=30, issued_on=days(-365))
    got = await behaviour(api)
    assert got["invoiced_90d"] == "30.00" and got["invoiced_365d"] == "150.00"
    months: dict[str, int] = {}
    for amount, n in ((10, 0), (20, -89), (40, -90), (80, -364)):
        month = days(n)[:7]
        months[month] = months.get(month, 0) + amount
    assert got["highest_monthly_invoiced"] == f"{max(months.values())}.00"
    # all 310 open, none overdue: dso = 310 / 30 (invoiced in 90 days) x 90 = 930
    assert got["dso_days"] == "930.00" and got["best_possible_dso_days"] == "930.00"
    assert got["average_days_delinquent"] == "0.00" and got["payment_index"] is None


async def test_the_index_follows_time_through_the_sweep(api: Api, db: Database,
                                                        monkeypatch: Any) -> None:
    await account(api)
    await invoice(api, "I1", "100", due_in=10)
    assert (await exposure(api))["payment_index"] is None
    later = clock.today() + dt.timedelta(days=20)  # I1 is now 10 days past due
    async with db.begin() as conn:
        # before the sweep, reconcile sees the stored index as stale
        stale = [d for d in await find_drift(conn, later) if d.aggregate == "payment_index"]
        assert [(d.maintained, d.recomputed) for d in stale] == [(None, 70)]
        assert (await behaviour_of(conn, "C1", later)).payment_index == 70
        assert await refresh_payment_index(conn, "C1", later) == 70
        assert await find_drift(conn, later) == []
        assert await refresh_payment_index(conn, "NOPE", later) is None
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + dt.timedelta(days=20))
    ex = await exposure(api)
    assert ex["payment_index"] == 70, ex  # the cache was retired with the change
    assert (await behaviour(api))["payment_index"] == 70


async def test_slow_payer_holds_from_a_real_ledger(api: Api) -> None:
    await account(api, limit="100000")
    await invoice(api, "I1", "100", due_in=-25, issued_on=days(-55))
    await pay(api, "P1", "100", invoice_id="I1")  # 25 days late -> index 55
    assert (await behaviour(api))["payment_index"] == 55
    policy = {"prepay_required": False, "hold_band": "0.20", "max_days_past_due": 30,
              "prepay_days_past_due": 90, "overdue_tolerance": "0", "reason": "test"}
    r = await api.put("/v1/policies/unrated", {**policy, "min_payment_index": 60})
    assert r.status_code == 200, r.text
    try:
        decision = await check(api, "O1", "10")
        assert decision["outcome"] == "hold", decision
        assert [x["code"] for x in decision["reasons"]] == ["SLOW_PAYER"]
        assert decision["payment_index"] == 55
    finally:
        r = await api.put("/v1/policies/unrated", policy)
        assert r.status_code == 200, r.text


async def test_reconcile_finds_injected_drift_and_repairs_it(api: Api, db: Database) -> None:
    await account(api)
    await invoice(api, "I1", "100", due_in=-20, issued_on=days(-30))
    await invoice(api, "I2", "50", due_in=-5, issued_on=days(-15))
    await pay(api, "P1", "60", invoice_id="I1", received_on=days(-2))
    await pay(api, "P2", "50", invoice_id="I2", received_on=days(-1))
    before = await behaviour(api)
    async with db.begin() as conn:
        assert await find_drift(conn) == []
        await conn.execute(text("UPDATE payment_days SET amount = amount + 1, max_days_late = 99"
                                " WHERE received_on = :d"), {"d": dt.date.fromisoformat(days(-2))})
        await conn.execute(text("DELETE FROM payment_days WHERE received_on = :d"),
                           {"d": dt.date.fromisoformat(days(-1))})
        await conn.execute(text("UPDATE invoiced_days SET amount = 7"))
        await conn.execute(text("UPDATE accounts SET payment_index = 3"))
        drift = await find_drift(conn)
        found = {d.aggregate for d in drift}
        assert {f"payment_days {days(-2)} amount", f"payment_days {days(-2)} max_days_late",
                f"payment_days {days(-1)} amount", f"payment_days {days(-1)} late_days",
                f"invoiced_days {days(-30)} amount", f"invoiced_days {days(-15)} amount",
                "payment_index"} <= found, found
        index = next(d for d in drift if d.aggregate == "payment_index")
        assert (index.maintained, index.recomputed) == (3, before["payment_index"])
        assert await repair(conn, drift) == len(drift)
        assert await find_drift(conn) == []
    assert await behaviour(api) == before
