"""The demo data shows what the README's walk-through says (the Part 2 examples)."""

from __future__ import annotations

from app.demo import load_demo


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
