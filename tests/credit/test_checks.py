"""POST /v1/credit-checks against real PostgreSQL: reservations, replays, races."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from tests.helpers import account, check, events, exposure, invoice, order


async def test_approve_reserves_the_amount(api):
    await account(api, limit="10000")
    decision = await check(api, "O1", "2500")
    assert decision["outcome"] == "approve"
    assert [r["code"] for r in decision["reasons"]] == ["WITHIN_LIMIT"]
    assert decision["exposure"] == {"open_receivables": "0.00", "open_orders": "0.00",
                                    "total": "0.00"}
    assert decision["available"] == "7500.00"
    assert decision["expires_at"] is not None
    assert (await exposure(api))["open_orders"] == "2500.00"
    stored = await order(api, "O1")
    assert stored["status"] == "approved" and stored["reserved"] == "2500.00"
    assert [d["decision_id"] for d in stored["decisions"]] == [decision["decision_id"]]


async def test_exposure_counts_receivables_and_orders(api):
    await account(api, limit="10000")
    await invoice(api, "I1", "6000")
    await check(api, "O1", "3000")
    held = await check(api, "O2", "1000.01")
    assert held["outcome"] == "hold"
    assert held["exposure"] == {"open_receivables": "6000.00", "open_orders": "3000.00",
                                "total": "9000.00"}
    assert held["available"] == "1000.00"
    assert held["expires_at"] is None
    ex = await exposure(api)
    assert ex["exposure"] == "9000.00" and ex["available"] == "1000.00"
    assert ex["held_orders"] == "1000.01" and ex["held_count"] == 1


async def test_hold_and_prepay_reserve_nothing(api):
    await account(api, limit="1000")
    assert (await check(api, "H", "1100"))["outcome"] == "hold"
    assert (await check(api, "P", "1300"))["outcome"] == "prepay"
    ex = await exposure(api)
    assert ex["open_orders"] == "0.00" and ex["available"] == "1000.00"
    assert ex["held_count"] == 1 and ex["held_orders"] == "1100.00", "prepay is not a hold"
    held, prepay = await order(api, "H"), await order(api, "P")
    assert (held["status"], held["reserved"], held["expires_at"]) == ("held", "0.00", None)
    assert (prepay["status"], prepay["reserved"], prepay["expires_at"]) == \
        ("prepay", "0.00", None)
    assert [o["order_id"] for o in (await api.get("/v1/holds")).json()["items"]] == ["H"]


async def test_unknown_customer_must_prepay_and_is_recorded(api):
    decision = await check(api, "O1", "10", customer_id="NOBODY")
    assert decision["outcome"] == "prepay"
    assert [r["code"] for r in decision["reasons"]] == ["UNKNOWN_CUSTOMER"]
    assert (await order(api, "O1"))["status"] == "prepay"


async def test_overdue_receivables_hold_then_prepay(api):
    await account(api, "LATE", limit="10000")
    await invoice(api, "I-late", "100", customer_id="LATE", due_in=-31)
    decision = await check(api, "O1", "10", customer_id="LATE")
    assert [r["code"] for r in decision["reasons"]] == ["OVERDUE_RECEIVABLES"]
    await invoice(api, "I-later", "100", customer_id="LATE", due_in=-91)
    decision = await check(api, "O2", "10", customer_id="LATE")
    assert decision["outcome"] == "prepay"
    assert [r["code"] for r in decision["reasons"]] == ["SEVERELY_OVERDUE"]
    ex = await exposure(api, "LATE")
    assert ex["oldest_overdue_days"] == 91 and ex["overdue_amount"] == "200.00"


async def test_dry_run_reserves_and_records_nothing(api):
    await account(api, limit="1000")
    decision = await check(api, "D1", "400", expect=200, dry_run=True)
    assert decision["outcome"] == "approve" and decision["dry_run"] is True
    assert (await exposure(api))["open_orders"] == "0.00"
    assert (await api.get("/v1/orders/D1")).status_code == 404
    assert await events(api) == ["account_created"]
    again = await check(api, "D1", "400", expect=200, dry_run=True)
    assert again["decision_id"] != decision["decision_id"]


async def test_replay_returns_the_original_decision(api):
    await account(api, limit="10000")
    first = await check(api, "O1", "1000")
    for same in ("1000", "1000.00", "1000.0000"):
        r = await api.post("/v1/credit-checks", {"order_id": "O1", "customer_id": "C1",
                                                 "amount": same, "currency": "EUR"})
        assert r.status_code == 200
        assert r.headers["Idempotent-Replayed"] == "true"
        assert r.json() == first
    raw = (b'{"order_id": "O1", "customer_id": "C1", "amount": 1000.00, "currency": "EUR"}')
    r = await api.request("POST", "/v1/credit-checks", content=raw,
                          headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["decision_id"] == first["decision_id"]
    assert (await exposure(api))["open_orders"] == "1000.00"


async def test_same_order_id_different_body_is_a_conflict(api):
    await account(api, limit="10000")
    await account(api, "C2", limit="10000")
    await check(api, "O1", "1000")
    for change in ({"amount": "1000.01"}, {"currency": "USD"}, {"customer_id": "C2"},
                   {"channel": "webshop"}):
        body = {"order_id": "O1", "customer_id": "C1", "amount": "1000", "currency": "EUR",
                **change}
        r = await api.post("/v1/credit-checks", body)
        assert r.status_code == 409, change
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "conflict"
    assert (await exposure(api))["open_orders"] == "1000.00"
    assert (await exposure(api, "C2"))["open_orders"] == "0.00"
    assert (await order(api, "O1"))["amount"] == "1000.00"
    assert (await events(api)).count("credit_check") == 1


async def test_a_currency_without_a_rate_is_rejected_and_leaves_no_trace(api):
    await account(api, limit="10000")
    r = await api.post("/v1/credit-checks", {"order_id": "O1", "customer_id": "C1",
                                             "amount": "10", "currency": "USD"})
    assert r.status_code == 422 and r.json()["code"] == "fx_rate_missing"
    assert (await api.get("/v1/orders/O1")).status_code == 404
    assert (await exposure(api))["open_orders"] == "0.00"
    assert await events(api) == ["account_created"]


async def test_concurrent_checks_never_exceed_the_limit(api):
    await account(api, limit="10000")
    results = await asyncio.gather(*(check(api, f"R{i}", "500", expect=None)
                                     for i in range(100)))
    outcomes = [r["outcome"] for r in results]
    assert outcomes.count("approve") == 20
    assert set(outcomes) <= {"approve", "hold"}
    assert (await exposure(api))["open_orders"] == "10000.00"
    for r in results:
        if r["outcome"] == "approve":
            assert D(r["exposure"]["total"]) + D(r["amount"]) <= D(r["effective_limit"])


async def test_identical_racing_requests_have_one_effect(api):
    await account(api, limit="10000")
    body = {"order_id": "SAME", "customer_id": "C1", "amount": "700", "currency": "EUR"}
    responses = await asyncio.gather(*(api.post("/v1/credit-checks", body, role="order-entry")
                                       for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["decision_id"] for r in responses}) == 1
    assert (await exposure(api))["open_orders"] == "700.00"
    stored = await order(api, "SAME")
    assert (stored["status"], stored["reserved"]) == ("approved", "700.00")
    assert [d["decision_id"] for d in stored["decisions"]] == [responses[0].json()["decision_id"]]
    assert await events(api) == ["credit_check", "account_created"], "one entry, not ten"
