"""Credit checks in another currency than the account's (DESIGN.md 2.6): decided, reserved
and recorded in the account's currency, at the latest rate on or before today."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from tests.api import Api
from tests.helpers import account, days, exposure, history, order


async def rate(api: Api, pair: str, value: str, as_of: str) -> None:
    r = await api.put(f"/v1/fx-rates/{pair}", {"rate": value, "as_of": as_of})
    assert r.status_code in (200, 201), r.text


async def usd_check(api: Api, order_id: str, amount: str, expect: int = 201) -> dict[str, Any]:
    r = await api.post("/v1/credit-checks", {"order_id": order_id, "customer_id": "C1",
                                             "amount": amount, "currency": "USD"},
                       role="order-entry")
    assert r.status_code == expect, r.text
    return dict(r.json())


async def test_a_check_in_another_currency_reserves_its_converted_amount(api):
    await account(api, limit="1000")
    await rate(api, "USD/EUR", "0.95", days(-10))
    await rate(api, "USD/EUR", "0.9", days(0))
    d = await usd_check(api, "O1", "1000")
    assert (d["outcome"], d["amount"], d["currency"]) == ("approve", "1000.00", "USD")
    assert (d["converted_amount"], d["fx_rate"], d["available"]) == ("900.00", "0.9", "100.00")
    stored = await order(api, "O1")
    assert (stored["amount"], stored["converted_amount"], stored["reserved"]) == (
        "1000.00", "900.00", "900.00")
    assert (await exposure(api))["open_orders"] == "900.00"
    entry = next(e for e in await history(api) if e["event"] == "credit_check")
    assert (entry["amount"], entry["currency"], entry["converted_amount"], entry["fx_rate"]) == (
        "1000.00", "USD", "900.00", "0.9")
    replay = await api.post("/v1/credit-checks", {"order_id": "O1", "customer_id": "C1",
                                                  "amount": "1000", "currency": "USD"},
                            role="order-entry")
    assert replay.status_code == 200 and replay.json() == d
    # 200 USD more would be 180 EUR: over the 100 left, within the band.
    held = await usd_check(api, "O2", "200")
    assert held["outcome"] == "hold" and "order 180.00 EUR" in held["reasons"][0]["message"]
    assert (await exposure(api))["held_orders"] == "180.00"


async def test_a_rate_dated_tomorrow_is_not_used_today(api):
    await account(api, limit="1000")
    await rate(api, "USD/EUR", "0.9", days(1))
    r = await usd_check(api, "O1", "10", expect=422)
    assert r["code"] == "fx_rate_missing"
    assert (await api.get("/v1/orders/O1")).status_code == 404
    await rate(api, "USD/EUR", "0.8", days(-1))
    assert (await usd_check(api, "O1", "10"))["fx_rate"] == "0.8"


async def test_conversion_rounds_half_even_at_the_fifth_decimal(api):
    await account(api, limit="1000")
    await rate(api, "USD/EUR", "2.5", days(0))
    # 0.0001 x 2.5 = 0.00025 -> 0.0002 (half-up would give 0.0003); 0.0003 x 2.5 = 0.00075
    # -> 0.0008.
    assert (await usd_check(api, "O1", "0.0001"))["converted_amount"] == "0.0002"
    assert (await usd_check(api, "O2", "0.0003"))["converted_amount"] == "0.0008"
    assert D((await exposure(api))["open_orders"]) == D("0.0010")


async def test_an_invoice_at_its_own_dates_rate_consumes_what_the_check_reserved(api):
    await account(api, limit="10000")
    await rate(api, "USD/EUR", "0.95", days(-10))
    await rate(api, "USD/EUR", "0.9", days(0))
    await usd_check(api, "O1", "1000")  # 900 EUR reserved at today's rate
    r = await api.post("/v1/invoices", {
        "invoice_id": "I1", "customer_id": "C1", "amount": "1000", "currency": "USD",
        "issued_on": days(-5), "due_on": days(25), "order_id": "O1"}, role="ledger")
    assert r.status_code == 201, r.text
    # 950 EUR at the invoice's date: it consumes the 900 reserved and no more.
    assert (r.json()["converted_amount"], r.json()["reservation_consumed"]) == (
        "950.00", "900.00")
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"], ex["exposure"]) == (
        "950.00", "0.00", "950.00")


async def test_an_amendment_counts_at_the_rate_the_order_was_checked_at(api):
    await account(api, limit="1000")
    await rate(api, "USD/EUR", "0.5", days(0))
    await usd_check(api, "O1", "1000")  # 500 EUR
    await rate(api, "USD/EUR", "0.9", days(0))  # a new rate for today changes nothing booked
    up = await api.patch("/v1/orders/O1", {"amount": "1400"}, role="order-entry")
    assert up.status_code == 200, up.text
    assert up.json()["decision"]["converted_amount"] == "200.00"
    assert (await exposure(api))["open_orders"] == "700.00"
    down = await api.patch("/v1/orders/O1", {"amount": "600"}, role="order-entry")
    assert down.status_code == 200, down.text
    assert (down.json()["order"]["converted_amount"], down.json()["order"]["reserved"]) == (
        "300.00", "300.00")
    assert (await exposure(api))["open_orders"] == "300.00"


async def test_a_dry_run_in_another_currency_is_converted_too(api):
    await account(api, limit="1000")
    await rate(api, "USD/EUR", "0.5", days(0))
    r = await api.post("/v1/credit-checks", {"order_id": "D1", "customer_id": "C1",
                                             "amount": "1800", "currency": "USD",
                                             "dry_run": True}, role="order-entry")
    assert r.status_code == 200, r.text
    assert (r.json()["outcome"], r.json()["converted_amount"]) == ("approve", "900.00")


async def test_dispatch_compares_the_converted_order_with_the_maximum(api):
    await account(api, limit="100000", max_order_amount="1000")
    await rate(api, "JPY/EUR", "0.006", days(0))
    d = await api.post("/v1/credit-checks", {"order_id": "J1", "customer_id": "C1",
                                             "amount": "150000", "currency": "JPY"},
                       role="order-entry")
    assert d.json()["outcome"] == "approve", d.text  # 900 EUR, below the 1000 maximum
    r = await api.post("/v1/orders/J1/dispatch-check", role="warehouse")
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "approve", r.text


async def test_an_amendment_the_same_in_the_accounts_currency_records_the_new_amount(api):
    await account(api, limit="1000")
    await rate(api, "VND/EUR", "0.000036", days(0))
    r = await api.post("/v1/credit-checks", {"order_id": "V1", "customer_id": "C1",
                                             "amount": "100000", "currency": "VND"},
                       role="order-entry")
    assert r.json()["converted_amount"] == "3.60", r.text
    up = await api.patch("/v1/orders/V1", {"amount": "100001"}, role="order-entry")
    assert up.status_code == 200, up.text
    stored = up.json()["order"]
    assert (stored["amount"], stored["converted_amount"], stored["reserved"]) == (
        "100001.00", "3.60", "3.60")
    assert up.json()["decision"] is None
