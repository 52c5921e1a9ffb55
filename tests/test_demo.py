"""The demo data shows what the README's walk-through says (the Part 2 examples)."""

from __future__ import annotations

from app.demo import load_demo
from tests.helpers import days


async def test_the_walk_through_group_hold_and_foreign_currency_check(api, clean_db):
    assert await load_demo(clean_db)
    group = (await api.get("/v1/groups/STARK-GROUP/exposure")).json()
    assert (group["exposure"], group["available"]) == ("128700.00", "21300.00")
    r = await api.post("/v1/credit-checks", {"order_id": "SO-2001", "customer_id": "STARK-US-008",
                                             "amount": "25000.00", "currency": "EUR"},
                       role="order-entry")
    held = r.json()
    assert r.status_code == 201 and held["outcome"] == "hold", held
    assert [x["code"] for x in held["reasons"]] == ["GROUP_OVER_LIMIT"]
    assert held["group"] == {"group_id": "STARK-GROUP", "exposure": "128700.00",
                             "effective_limit": "150000.00", "available": "21300.00"}
    r = await api.post("/v1/credit-checks", {"order_id": "SO-2002", "customer_id": "WAYNE-007",
                                             "amount": "10000.00", "currency": "USD"},
                       role="order-entry")
    usd = r.json()
    assert r.status_code == 201 and usd["outcome"] == "approve", usd
    assert (usd["amount"], usd["currency"], usd["converted_amount"], usd["fx_rate"]) == (
        "10000.00", "USD", "9200.00", "0.92")
    assert usd["available"] == "90800.00"
    assert await load_demo(clean_db) is False


async def test_the_walk_through_simulation_counts_the_sisters_hold(api, clean_db):
    """The README's simulation, after its checks: class A has Acme's two and the sister's."""
    assert await load_demo(clean_db)
    for order_id, customer_id, amount in (("SO-1001", "ACME-001", "5000.00"),
                                          ("SO-1002", "ACME-001", "16000.00"),
                                          ("SO-2001", "STARK-US-008", "25000.00")):
        r = await api.post("/v1/credit-checks", {"order_id": order_id, "customer_id": customer_id,
                                                 "amount": amount, "currency": "EUR"},
                           role="order-entry")
        assert r.status_code == 201, r.text
    policy = {"prepay_required": False, "hold_band": "0.04", "max_days_past_due": 30,
              "prepay_days_past_due": 90, "overdue_tolerance": "0"}
    r = await api.post("/v1/policies/A/simulate",
                       {"policy": policy, "from": days(0), "to": days(0)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decisions"] == 3 and body["changed_count"] == 1, body
    assert body["current"] == {"approve": 1, "hold": 2, "prepay": 0,
                               "amount_approved": "5000.00"}, body
    assert body["proposed"] == {"approve": 1, "hold": 1, "prepay": 1,
                                "amount_approved": "5000.00"}, body
    assert [c["order_id"] for c in body["changed"]] == ["SO-1002"]
