"""Exchange rates: stored by pair and day, and what invoices, payments and snapshots in another
currency than the account's count for in it (DESIGN.md 2.6, 2.9)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import text

from app import clock
from tests.api import Api
from tests.helpers import account, check, days, exposure, history, invoice, order


async def rate(api: Api, pair: str, value: Any, as_of: str, expect: int = 201, **kw: Any
               ) -> dict[str, Any]:
    r = await api.put(f"/v1/fx-rates/{pair}", {"rate": value, "as_of": as_of}, **kw)
    assert r.status_code == expect, r.text
    return dict(r.json())


async def post(api: Api, path: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    r = await api.post(path, body, role="ledger")
    assert r.status_code == expect, r.text
    return dict(r.json())


def usd_invoice(invoice_id: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {"invoice_id": invoice_id, "customer_id": "C1", "amount": amount,
            "currency": "USD", "due_on": days(30), **extra}


def usd_payment(payment_id: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {"payment_id": payment_id, "customer_id": "C1", "amount": amount,
            "currency": "USD", **extra}


async def rows(db: Any, sql: str) -> list[Any]:
    async with db.begin() as conn:
        return list((await conn.execute(text(sql))).mappings().all())


async def ledger_counts(db: Any) -> tuple[int, int, int]:
    found = await rows(db, "SELECT (SELECT count(*) FROM open_items) AS items, "
                           "(SELECT count(*) FROM payments) AS payments, "
                           "(SELECT count(*) FROM credit_file) AS entries")
    return found[0]["items"], found[0]["payments"], found[0]["entries"]


def entry(entries: list[dict[str, Any]], event: str) -> dict[str, Any]:
    return next(e for e in entries if e["event"] == event)


# ---------------------------------------------------------------- the rates themselves

async def test_put_creates_then_the_same_day_replaces(api):
    created = await rate(api, "USD/EUR", "0.9200", days(-10), role="controller")
    assert created == {"from": "USD", "to": "EUR", "as_of": days(-10), "rate": "0.92",
                       "updated_at": created["updated_at"], "updated_by": "test-controller"}
    replaced = await rate(api, "USD/EUR", 0.93, days(-10), expect=200)
    assert replaced["rate"] == "0.93"
    await rate(api, "USD/EUR", "0.95", days(-5))
    await rate(api, "GBP/EUR", "1.1500000001", days(-5))
    await rate(api, "EUR/USD", 1, days(-5))
    r = await api.get("/v1/fx-rates", role="controller")
    assert r.status_code == 200, r.text
    assert [(i["from"], i["to"], i["as_of"], i["rate"]) for i in r.json()["items"]] == [
        ("EUR", "USD", days(-5), "1"), ("GBP", "EUR", days(-5), "1.1500000001"),
        ("USD", "EUR", days(-10), "0.93"), ("USD", "EUR", days(-5), "0.95")]
    assert r.json()["next_cursor"] is None


async def test_the_list_filters_by_pair_and_pages(api):
    for pair, as_of in [("USD/EUR", -3), ("USD/EUR", -2), ("USD/CHF", -2), ("GBP/EUR", -1)]:
        await rate(api, pair, "2", days(as_of))
    by_from = (await api.get("/v1/fx-rates", params={"from": "USD"})).json()["items"]
    assert [(i["to"], i["as_of"]) for i in by_from] == [
        ("CHF", days(-2)), ("EUR", days(-3)), ("EUR", days(-2))]
    by_to = (await api.get("/v1/fx-rates", params={"to": "EUR"})).json()["items"]
    assert [i["from"] for i in by_to] == ["GBP", "USD", "USD"]
    pair = (await api.get("/v1/fx-rates", params={"from": "USD", "to": "CHF"})).json()
    assert len(pair["items"]) == 1
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/fx-rates", params=params)).json()
        seen += [(i["from"], i["to"], i["as_of"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [("GBP", "EUR", days(-1)), ("USD", "CHF", days(-2)),
                    ("USD", "EUR", days(-3)), ("USD", "EUR", days(-2))]


async def test_rates_are_for_controllers(api):
    body = {"rate": "1.1", "as_of": days(0)}
    for role in ("ledger", "order-entry", "warehouse"):
        assert (await api.put("/v1/fx-rates/USD/EUR", body, role=role)).status_code == 403
        assert (await api.get("/v1/fx-rates", role=role)).status_code == 403
    assert (await api.put("/v1/fx-rates/USD/EUR", body, role=None)).status_code == 401
    assert (await api.get("/v1/fx-rates")).json()["items"] == []


@pytest.mark.parametrize(("path", "body", "field"), [
    ("EUR/EUR", {"rate": "1", "as_of": "2026-01-01"}, "path.to"),
    ("usd/EUR", {"rate": "1", "as_of": "2026-01-01"}, "path.from"),
    ("USD/EU", {"rate": "1", "as_of": "2026-01-01"}, "path.to"),
    ("USD/EUR", {"rate": "0", "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": "0.0000000000", "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": -1, "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": "1.00000000001", "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": 1.00000000001, "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": "1e3", "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": 10**9, "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": "1000000000", "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": True, "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": None, "as_of": "2026-01-01"}, "body.rate"),
    ("USD/EUR", {"rate": "1"}, "body.as_of"),
    ("USD/EUR", {"rate": "1", "as_of": "2026-02-30"}, "body.as_of"),
    ("USD/EUR", {"rate": "1", "as_of": "2026-01-01", "source": "ECB"}, "body.source"),
])
async def test_bad_rates_are_refused_and_not_stored(api, path, body, field):
    r = await api.put(f"/v1/fx-rates/{path}", body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert (await api.get("/v1/fx-rates")).json()["items"] == []


async def test_the_edges_of_a_rate_are_accepted(api):
    assert (await rate(api, "USD/EUR", "999999999.9999999999", days(0)))["rate"] == \
        "999999999.9999999999"
    assert (await rate(api, "USD/EUR", 0.0000000001, days(-1)))["rate"] == "0.0000000001"


# ---------------------------------------------------------------- invoices

async def test_an_invoice_in_another_currency_counts_converted(api, db):
    await account(api, limit="10000")
    await rate(api, "USD/EUR", "0.5", days(-30))
    await rate(api, "USD/EUR", "0.6", days(-3))
    # 100.0001 * 0.5 = 50.00005: half-even keeps 50.0000 (half-up would make 50.0001) ...
    first = await post(api, "/v1/invoices", usd_invoice("I1", "100.0001", issued_on=days(-10)))
    assert (first["amount"], first["currency"]) == ("100.0001", "USD")
    assert (first["converted_amount"], first["fx_rate"]) == ("50.00", "0.5")
    # ... and 100.0003 * 0.5 = 50.00015 goes up to 50.0002; the day before the new rate.
    second = await post(api, "/v1/invoices", usd_invoice("I2", "100.0003", issued_on=days(-4)))
    assert (second["converted_amount"], second["fx_rate"]) == ("50.0002", "0.5")
    # Without issued_on: today's rate, the latest on or before today.
    third = await post(api, "/v1/invoices", usd_invoice("I3", "10"))
    assert (third["converted_amount"], third["fx_rate"]) == ("6.00", "0.6")
    assert (await exposure(api))["open_receivables"] == "106.0002"
    stored = await rows(db, "SELECT invoice_id, amount, open_amount, currency, document_amount,"
                            " document_currency, fx_rate FROM open_items ORDER BY invoice_id")
    assert [tuple(str(v) for v in r.values()) for r in stored][:2] == [
        ("I1", "50.0000", "50.0000", "EUR", "100.0001", "USD", "0.5000000000"),
        ("I2", "50.0002", "50.0002", "EUR", "100.0003", "USD", "0.5000000000")]
    posted = [e for e in await history(api) if e["event"] == "invoice_posted"]
    assert [(e["amount"], e["currency"], e["converted_amount"], e["fx_rate"])
            for e in posted] == [("10.00", "USD", "6.00", "0.6"),
                                 ("100.0003", "USD", "50.0002", "0.5"),
                                 ("100.0001", "USD", "50.00", "0.5")]


async def test_an_invoice_in_the_accounts_currency_has_no_rate(api, db):
    await account(api, limit="10000")
    posted = await invoice(api, "I1", "120.5")
    assert (posted["amount"], posted["converted_amount"], posted["fx_rate"]) == \
        ("120.50", "120.50", None)
    stored = await rows(db, "SELECT document_amount, document_currency, fx_rate FROM open_items")
    assert dict(stored[0]) == {"document_amount": None, "document_currency": None,
                               "fx_rate": None}
    logged = entry(await history(api), "invoice_posted")
    assert (logged["amount"], logged["currency"], logged["converted_amount"],
            logged["fx_rate"]) == ("120.50", "EUR", "120.50", None)


async def test_a_rate_dated_in_the_future_is_not_used_before_its_day(api, db):
    await account(api, limit="10000")
    await rate(api, "USD/EUR", "0.5", days(1))
    before = await ledger_counts(db)
    ex = await exposure(api)
    for path, body in [("/v1/invoices", usd_invoice("I1", "100")),
                       ("/v1/invoices", usd_invoice("I2", "100", issued_on=days(0))),
                       ("/v1/payments", usd_payment("P1", "100"))]:
        refused = await post(api, path, body, expect=422)
        assert refused["code"] == "fx_rate_missing", refused
    assert await ledger_counts(db) == before, "a refused document leaves no trace"
    assert await exposure(api) == ex
    # Dated on the rate's day, it converts.
    dated = await post(api, "/v1/invoices", usd_invoice("I3", "100", issued_on=days(1)))
    assert dated["converted_amount"] == "50.00"


async def test_the_inverse_pair_is_not_used(api):
    await account(api, limit="10000")  # EUR
    await account(api, "U1", limit="10000", currency="USD")
    await rate(api, "EUR/USD", "1.25", days(-1))
    refused = await post(api, "/v1/invoices", usd_invoice("I1", "100"), expect=422)
    assert refused["code"] == "fx_rate_missing"
    assert (await exposure(api))["open_receivables"] == "0.00"
    eur = await post(api, "/v1/invoices", {**usd_invoice("I2", "100"), "customer_id": "U1",
                                           "currency": "EUR"})
    assert (eur["converted_amount"], eur["fx_rate"]) == ("125.00", "1.25")
    assert (await exposure(api, "U1"))["open_receivables"] == "125.00"


async def test_an_invoice_consumes_its_orders_reservation_by_the_converted_amount(api):
    await account(api, limit="10000")
    await check(api, "O1", "4000")
    await rate(api, "USD/EUR", "0.5", days(-1))
    first = await post(api, "/v1/invoices", usd_invoice("I1", "2000.0001", order_id="O1"))
    assert (first["converted_amount"], first["reservation_consumed"]) == ("1000.00", "1000.00")
    assert first["order_status"] == "approved"
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("1000.00", "3000.00")
    # 5000 EUR against the 3000 still reserved: at most what is reserved, and fully invoiced.
    second = await post(api, "/v1/invoices", usd_invoice("I2", "10000", order_id="O1"))
    assert (second["reservation_consumed"], second["order_status"]) == ("3000.00", "invoiced")
    stored = await order(api, "O1")
    assert (stored["reserved"], stored["invoiced"]) == ("0.00", "6000.00")
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("6000.00", "0.00")


async def test_an_invoice_replay_compares_the_request_as_sent(api):
    await account(api, limit="10000")
    await rate(api, "USD/EUR", "0.5", days(-1))
    body = usd_invoice("I1", "100")
    first = await post(api, "/v1/invoices", body)
    # A rate changed since does not make the same request another one.
    await rate(api, "USD/EUR", "0.7", days(-1), expect=200)
    again = await api.post("/v1/invoices", {**body, "amount": 100.0}, role="ledger")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first
    converted = await api.post("/v1/invoices", {**body, "amount": "50", "currency": "EUR"},
                               role="ledger")
    assert converted.status_code == 409 and converted.json()["code"] == "conflict"
    assert (await exposure(api))["open_receivables"] == "50.00"


async def test_a_conversion_beyond_the_money_range_is_refused(api, db):
    await account(api, limit="10000")
    await rate(api, "USD/EUR", "100000000", days(-1))
    before = await ledger_counts(db)
    refused = await post(api, "/v1/invoices", usd_invoice("I1", "1000000"), expect=422)
    assert refused["code"] == "converted_amount_too_large"
    assert await ledger_counts(db) == before


# ---------------------------------------------------------------- payments

async def test_a_payment_in_another_currency_applies_its_converted_amount(api, db):
    await account(api, limit="10000")
    await invoice(api, "I1", "1000")
    await rate(api, "USD/EUR", "0.8", days(-10))
    await rate(api, "USD/EUR", "0.5", days(-1))
    paid = await post(api, "/v1/payments", usd_payment("P1", "500", received_on=days(-2)))
    assert (paid["amount"], paid["currency"], paid["converted_amount"], paid["fx_rate"]) == \
        ("500.00", "USD", "400.00", "0.8")
    assert paid["applied"] == [{"invoice_id": "I1", "amount": "400.00"}]
    assert paid["unapplied"] == "0.00"
    # Today's rate, an overpayment: 600 settles I1, 0.0001 * 0.5 = 0.00005 -> 0.0000 ...
    over = await post(api, "/v1/payments", usd_payment("P2", "1300.0001"))
    assert (over["converted_amount"], over["fx_rate"]) == ("650.00", "0.5")
    assert over["applied"] == [{"invoice_id": "I1", "amount": "600.00"}]
    assert over["unapplied"] == "50.00"
    assert (await exposure(api))["open_receivables"] == "-50.00"
    stored = await rows(db, "SELECT amount, currency, unapplied, document_amount, "
                            "document_currency, fx_rate FROM payments ORDER BY payment_id")
    assert [(str(r["amount"]), r["currency"], str(r["document_amount"]), r["document_currency"],
             str(r["fx_rate"])) for r in stored] == [
        ("400.0000", "EUR", "500.0000", "USD", "0.8000000000"),
        ("650.0000", "EUR", "1300.0001", "USD", "0.5000000000")]
    logged = entry(await history(api), "payment_received")
    assert (logged["amount"], logged["currency"], logged["converted_amount"],
            logged["fx_rate"]) == ("1300.0001", "USD", "650.00", "0.5")


async def test_a_payment_replay_compares_the_request_as_sent(api):
    await account(api, limit="10000")
    await invoice(api, "I1", "1000")
    await rate(api, "USD/EUR", "0.8", days(-1))
    body = usd_payment("P1", "500", received_on=days(0))
    first = await post(api, "/v1/payments", body)
    again = await api.post("/v1/payments", {**body, "amount": "500.0000"}, role="ledger")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first
    for other in ({**body, "amount": "400", "currency": "EUR"}, {**body, "currency": "EUR"}):
        r = await api.post("/v1/payments", other, role="ledger")
        assert r.status_code == 409 and r.json()["code"] == "conflict", r.text
    assert (await exposure(api))["open_receivables"] == "600.00"


async def test_a_payment_without_a_rate_for_its_day_leaves_no_trace(api, db):
    await account(api, limit="10000")
    await invoice(api, "I1", "1000")
    await rate(api, "USD/EUR", "0.8", days(-1))
    before = await ledger_counts(db)
    refused = await post(api, "/v1/payments", usd_payment("P1", "500", received_on=days(-2)),
                         expect=422)
    assert refused["code"] == "fx_rate_missing"
    assert await ledger_counts(db) == before
    assert (await exposure(api))["open_receivables"] == "1000.00"


# ---------------------------------------------------------------- snapshots

async def test_snapshot_items_count_converted_at_their_own_date(api, db, monkeypatch):
    await account(api, limit="10000")
    await rate(api, "USD/EUR", "0.5", days(-30))
    await rate(api, "USD/EUR", "0.6", days(-2))
    await post(api, "/v1/invoices", usd_invoice("I1", "300", issued_on=days(-20)))
    items = [
        # A known invoice: at the rate of its issued_on (0.5).
        {"invoice_id": "I1", "amount": "200", "currency": "USD", "due_on": days(10)},
        # New items: at today's (0.6); -100.0001 * 0.6 = -60.00006 -> -60.0001.
        {"invoice_id": "N1", "amount": "100", "currency": "USD", "due_on": days(20)},
        {"invoice_id": "CN", "amount": "-100.0001", "currency": "USD", "due_on": days(0)},
        {"invoice_id": "E1", "amount": "50", "currency": "EUR", "due_on": days(5)},
    ]
    r = await api.put("/v1/customers/C1/open-items", {"items": items}, role="ledger")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["open_receivables_before"], body["open_receivables_after"]) == \
        ("150.00", "149.9999")
    assert body["changed"] == ["I1"] and sorted(body["added"]) == ["CN", "E1", "N1"]
    assert body["converted"] == [
        {"invoice_id": "I1", "amount": "200.00", "currency": "USD",
         "converted_amount": "100.00", "fx_rate": "0.5"},
        {"invoice_id": "N1", "amount": "100.00", "currency": "USD",
         "converted_amount": "60.00", "fx_rate": "0.6"},
        {"invoice_id": "CN", "amount": "-100.0001", "currency": "USD",
         "converted_amount": "-60.0001", "fx_rate": "0.6"}]
    assert (await exposure(api))["open_receivables"] == "149.9999"
    stored = {r["invoice_id"]: r for r in await rows(
        db, "SELECT invoice_id, open_amount, currency, document_amount, document_currency, "
            "fx_rate FROM open_items")}
    assert (str(stored["N1"]["open_amount"]), stored["N1"]["currency"],
            str(stored["N1"]["document_amount"]), stored["N1"]["document_currency"],
            str(stored["N1"]["fx_rate"])) == ("60.0000", "EUR", "100.0000", "USD", "0.6000000000")
    assert stored["E1"]["document_currency"] is None and stored["E1"]["fx_rate"] is None
    # Tomorrow, with tomorrow's rate, items already known keep the rate of their date (the
    # day they were first recorded): the same snapshot changes nothing.
    await rate(api, "USD/EUR", "0.9", days(1))
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + dt.timedelta(days=1))
    again = (await api.put("/v1/customers/C1/open-items", {"items": items},
                           role="ledger")).json()
    assert (again["changed"], again["added"], again["unchanged"]) == ([], [], 4)
    assert again["open_receivables_after"] == "149.9999"
    # A new item today counts at today's rate.
    fresh = [*items, {"invoice_id": "N2", "amount": "10", "currency": "USD",
                      "due_on": items[0]["due_on"]}]
    third = (await api.put("/v1/customers/C1/open-items", {"items": fresh},
                           role="ledger")).json()
    assert third["added"] == ["N2"] and third["converted"][-1]["fx_rate"] == "0.9"
    assert third["open_receivables_after"] == "158.9999"


async def test_a_snapshot_item_without_a_rate_refuses_the_whole_snapshot(api, db):
    await account(api, limit="10000")
    await invoice(api, "I1", "100")
    await rate(api, "USD/EUR", "0.5", days(-1))
    await rate(api, "EUR/GBP", "0.9", days(-1))  # the inverse of what is needed
    before = await ledger_counts(db)
    r = await api.put("/v1/customers/C1/open-items", {"items": [
        {"invoice_id": "I1", "amount": "100", "currency": "USD", "due_on": days(10)},
        {"invoice_id": "G1", "amount": "10", "currency": "GBP", "due_on": days(10)},
        {"invoice_id": "G2", "amount": "10", "currency": "GBP", "due_on": days(10)},
    ]}, role="ledger")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "fx_rate_missing"
    assert r.json()["invoice_ids"] == ["G1", "G2"]
    assert await ledger_counts(db) == before
    assert (await exposure(api))["open_receivables"] == "100.00"
