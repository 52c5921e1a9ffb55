"""An account's review date and maximum order amount: set by PUT or PATCH, audited, and
enforced by the three Part 2 rules at entry, amendment and dispatch."""

from __future__ import annotations

from tests.helpers import account, check, days, history

SLOW = {"prepay_required": False, "hold_band": "0.20", "max_days_past_due": 30,
        "prepay_days_past_due": 90, "overdue_tolerance": "0", "review_grace_days": 5}


async def test_the_fields_are_kept_shown_and_audited(api):
    created = await account(api, "R1", "5000", review_due_on=days(30), max_order_amount="800")
    assert created["review_due_on"] == days(30) and created["max_order_amount"] == "800.00"
    r = await api.patch("/v1/customers/R1", {"max_order_amount": "900.50", "reason": "bigger"})
    assert r.status_code == 200 and r.json()["max_order_amount"] == "900.50"
    assert r.json()["review_due_on"] == days(30), "a PATCH leaves out what it does not name"
    changed = next(e for e in await history(api, "R1") if e["event"] == "account_changed")
    assert changed["details"]["changes"]["max_order_amount"] == {"old": "800.00", "new": "900.50"}
    for bad in ({"max_order_amount": "0"}, {"max_order_amount": "-5"},
                {"review_due_on": "2026-02-30"}, {"review_due_on": 20261201}):
        r = await api.patch("/v1/customers/R1", bad)
        assert r.status_code == 422, (bad, r.text)
    got = (await api.get("/v1/customers/R1")).json()
    assert got["max_order_amount"] == "900.50" and got["review_due_on"] == days(30)


async def test_an_order_above_the_maximum_is_held_at_entry_and_amendment(api):
    await account(api, "R2", "10000", max_order_amount="1000")
    held = await check(api, "M-1", "1000.01", "R2")
    assert held["outcome"] == "hold"
    assert [r["code"] for r in held["reasons"]] == ["ORDER_ABOVE_MAXIMUM"]
    assert (await check(api, "M-2", "600", "R2"))["outcome"] == "approve"
    # The increase alone (500) is below the maximum, the new total (1,100) is not.
    r = await api.patch("/v1/orders/M-2", {"amount": "1100"}, role="order-entry")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"]["outcome"] == "hold"
    assert [x["code"] for x in body["decision"]["reasons"]] == ["ORDER_ABOVE_MAXIMUM"]
    assert body["order"]["amount"] == "600.00" and body["order"]["status"] == "approved"


async def test_dispatch_re_evaluates_the_maximum_and_the_review(api):
    await account(api, "R3", "10000")
    await api.put("/v1/policies/unrated", SLOW, role="controller")
    assert (await check(api, "D-1", "700", "R3"))["outcome"] == "approve"
    r = await api.patch("/v1/customers/R3", {"max_order_amount": "500",
                                             "review_due_on": days(-6)})
    assert r.status_code == 200
    r = await api.post("/v1/orders/D-1/dispatch-check", role="warehouse")
    assert r.status_code == 200, r.text
    decision = r.json()
    assert decision["outcome"] == "hold"
    assert [x["code"] for x in decision["reasons"]] == ["ORDER_ABOVE_MAXIMUM", "REVIEW_OVERDUE"]
    order = (await api.get("/v1/orders/D-1")).json()
    assert order["status"] == "approved" and order["reserved"] == "700.00"


async def test_review_overdue_only_past_the_grace_days(api):
    await account(api, "R4", "10000", review_due_on=days(-5))
    await api.put("/v1/policies/unrated", SLOW, role="controller")
    assert (await check(api, "G-1", "10", "R4"))["outcome"] == "approve"  # 5 days: in grace
    await api.patch("/v1/customers/R4", {"review_due_on": days(-6)})
    decision = await check(api, "G-2", "10", "R4")
    assert decision["outcome"] == "hold"
    assert decision["reasons"][0]["code"] == "REVIEW_OVERDUE"
    assert decision["payment_index"] is None
