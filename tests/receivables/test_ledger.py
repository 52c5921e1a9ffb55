"""Invoices, payments and open-item snapshots keep exposure exact and never count twice."""

from __future__ import annotations

import asyncio

from tests.helpers import account, check, days, events, exposure, history, invoice, order, pay


async def test_invoice_consumes_its_orders_reservation(api):
    await account(api, limit="10000")
    await check(api, "O1", "4000")
    posted = await invoice(api, "I1", "1500", order_id="O1")
    assert posted["reservation_consumed"] == "1500.00"
    assert posted["order_status"] == "approved"
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"], ex["exposure"]) == \
        ("1500.00", "2500.00", "4000.00")
    await invoice(api, "I2", "2500", order_id="O1")
    stored = await order(api, "O1")
    assert stored["status"] == "invoiced" and stored["reserved"] == "0.00"
    assert stored["invoiced"] == "4000.00"
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("4000.00", "0.00")


async def test_invoice_above_the_reservation_consumes_at_most_what_is_reserved(api):
    await account(api, limit="10000")
    await check(api, "O1", "1000")
    posted = await invoice(api, "I1", "1200", order_id="O1")
    assert posted["reservation_consumed"] == "1000.00"
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("1200.00", "0.00")


async def test_invoice_for_a_shipped_order_consumes_it_too(api):
    await account(api, limit="10000")
    await check(api, "O1", "1000")
    shipped = await api.post("/v1/orders/O1/dispatch-check", role="warehouse")
    assert shipped.status_code == 200 and shipped.json()["outcome"] == "approve", shipped.text
    assert (await order(api, "O1"))["status"] == "shipped"
    posted = await invoice(api, "I1", "1000", order_id="O1")
    assert posted["reservation_consumed"] == "1000.00"
    stored = await order(api, "O1")
    assert stored["status"] == "invoiced"
    assert (stored["reserved"], stored["invoiced"]) == ("0.00", "1000.00")
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"], ex["exposure"]) == \
        ("1000.00", "0.00", "1000.00")


async def test_invoice_replay_and_conflict(api):
    await account(api, limit="10000")
    first = await invoice(api, "I1", "100")
    body = {"invoice_id": "I1", "customer_id": "C1", "amount": "100.00", "currency": "EUR",
            "due_on": days(30)}
    again = await api.post("/v1/invoices", body, role="ledger")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first
    conflict = await api.post("/v1/invoices", {**body, "amount": "101"}, role="ledger")
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
    assert (await exposure(api))["open_receivables"] == "100.00"


async def test_invoice_for_an_order_of_another_customer_is_refused(api):
    await account(api, limit="10000")
    await account(api, "C2", limit="10000")
    await check(api, "O1", "100")
    r = await api.post("/v1/invoices", {"invoice_id": "I1", "customer_id": "C2", "amount": "50",
                                        "currency": "EUR", "due_on": days(1), "order_id": "O1"},
                       role="ledger")
    assert r.status_code == 409 and r.json()["code"] == "order_customer_mismatch"
    assert (await exposure(api, "C2"))["open_receivables"] == "0.00"
    assert (await exposure(api))["open_orders"] == "100.00", "O1 keeps its reservation"
    assert (await order(api, "O1"))["reserved"] == "100.00"
    assert "invoice_posted" not in await events(api, "C2")


async def test_payment_pays_oldest_due_first_and_keeps_the_excess_as_credit(api):
    await account(api, limit="10000")
    await invoice(api, "NEW", "300", due_in=20)
    await invoice(api, "OLD", "200", due_in=-5)
    await invoice(api, "MID", "100", due_in=3)
    paid = await pay(api, "P1", "700")
    assert paid["applied"] == [{"invoice_id": "OLD", "amount": "200.00"},
                               {"invoice_id": "MID", "amount": "100.00"},
                               {"invoice_id": "NEW", "amount": "300.00"}]
    assert paid["unapplied"] == "100.00"
    ex = await exposure(api)
    assert ex["open_receivables"] == "-100.00" and ex["available"] == "10100.00"
    assert ex["oldest_overdue_days"] is None


async def test_payment_to_a_named_invoice(api):
    await account(api, limit="10000")
    await invoice(api, "A", "300", due_in=-40)
    await invoice(api, "B", "300", due_in=10)
    paid = await pay(api, "P1", "350", invoice_id="B")
    assert paid["applied"] == [{"invoice_id": "B", "amount": "300.00"}]
    assert paid["unapplied"] == "50.00"
    ex = await exposure(api)
    assert ex["open_receivables"] == "250.00" and ex["oldest_overdue_days"] == 40


async def test_payment_replay_and_conflict(api):
    await account(api, limit="10000")
    await invoice(api, "A", "300")
    first = await pay(api, "P1", "100")
    body = {"payment_id": "P1", "customer_id": "C1", "amount": 100, "currency": "EUR"}
    again = await api.post("/v1/payments", body, role="ledger")
    assert again.status_code == 200 and again.json() == first
    assert again.headers["Idempotent-Replayed"] == "true"
    conflict = await api.post("/v1/payments", {**body, "amount": "99"}, role="ledger")
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
    assert (await exposure(api))["open_receivables"] == "200.00"
    assert (await events(api)).count("payment_received") == 1, "replay and conflict add nothing"


async def test_snapshot_replaces_every_open_item(api):
    await account(api, limit="10000")
    await invoice(api, "KEEP", "100")
    await invoice(api, "CHANGE", "200")
    await invoice(api, "GONE", "300")
    await pay(api, "P-over", "700")  # pays all three, 100 unapplied
    await invoice(api, "AFTER", "50")
    r = await api.put("/v1/customers/C1/open-items", {"items": [
        {"invoice_id": "CHANGE", "amount": "150", "currency": "EUR", "due_on": days(-10)},
        {"invoice_id": "AFTER", "amount": "50", "currency": "EUR", "due_on": days(30)},
        {"invoice_id": "NEW", "amount": "400", "currency": "EUR", "due_on": days(-45)},
        {"invoice_id": "CREDIT", "amount": "-80", "currency": "EUR", "due_on": days(0)},
    ]}, role="ledger")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["open_receivables_before"] == "-50.00"
    assert body["open_receivables_after"] == "520.00"
    assert sorted(body["added"]) == ["CREDIT", "NEW"]
    assert body["changed"] == ["CHANGE"]
    assert body["removed"] == []
    assert body["unchanged"] == 1
    assert body["unapplied_credit_cleared"] == "100.00"
    ex = await exposure(api)
    assert ex["open_receivables"] == "520.00"
    assert ex["oldest_overdue_days"] == 45 and ex["overdue_amount"] == "550.00"
    second = (await api.put("/v1/customers/C1/open-items", {"items": []}, role="ledger")).json()
    assert sorted(second["removed"]) == ["AFTER", "CHANGE", "CREDIT", "NEW"]
    assert (await exposure(api))["open_receivables"] == "0.00"


async def test_snapshot_frees_headroom_for_held_orders(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "900")
    assert (await check(api, "H", "200"))["outcome"] == "hold"
    assert (await exposure(api))["held_count"] == 1
    r = await api.put("/v1/customers/C1/open-items", {"items": [
        {"invoice_id": "I1", "amount": "400", "currency": "EUR", "due_on": days(10)}]},
        role="ledger")
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == ["I1"] and r.json()["open_receivables_after"] == "400.00"
    released = await order(api, "H")
    assert released["status"] == "approved" and released["reserved"] == "200.00"
    assert released["released"] is False, "an automatic release, not a controller's"
    decision = released["decisions"][-1]
    assert decision["kind"] == "auto_release" and decision["outcome"] == "approve"
    assert [r["code"] for r in decision["reasons"]] == ["AUTO_RELEASE"]
    assert decision["exposure"] == {"open_receivables": "400.00", "open_orders": "0.00",
                                    "total": "400.00"}
    assert decision["available"] == "400.00"
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"], ex["exposure"]) == \
        ("400.00", "200.00", "600.00")
    assert ex["held_count"] == 0 and ex["held_orders"] == "0.00"
    # (the snapshot also resolved the UTILISATION_HIGH alert of the 900 invoice: not counted)
    entries = [e for e in await history(api) if not e["event"].startswith("alert_")]
    assert [e["event"] for e in entries[:2]] == ["auto_release", "open_items_replaced"]
    auto = entries[0]
    assert (auto["order_id"], auto["actor"]) == ("H", "system")
    assert auto["decision"]["decision_id"] == decision["decision_id"]
    assert auto["decision"]["amount"] == "200.00"


async def test_snapshot_refuses_ids_of_other_customers_and_unconvertible_currency(api):
    await account(api, limit="1000")
    await account(api, "C2", limit="1000")
    await invoice(api, "I1", "10", customer_id="C2")
    item = {"invoice_id": "I1", "amount": "10", "currency": "EUR", "due_on": days(1)}
    r = await api.put("/v1/customers/C1/open-items", {"items": [item]}, role="ledger")
    assert r.status_code == 409, r.text
    assert "I1" in r.json()["detail"]
    r = await api.put("/v1/customers/C1/open-items",
                      {"items": [{**item, "invoice_id": "X", "currency": "USD"}]}, role="ledger")
    assert r.status_code == 422 and r.json()["code"] == "fx_rate_missing"  # no USD/EUR rate
    assert r.json()["invoice_ids"] == ["X"]
    dup = await api.put("/v1/customers/C1/open-items", {"items": [item, item]}, role="ledger")
    assert dup.status_code == 422, dup.text
    assert (await exposure(api))["open_receivables"] == "0.00"
    assert (await exposure(api, "C2"))["open_receivables"] == "10.00", "C2's I1 is untouched"
    assert "open_items_replaced" not in await events(api)


async def test_a_credit_note_in_a_snapshot_auto_releases_a_hold(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "900")
    await check(api, "H", "200")
    assert (await order(api, "H"))["status"] == "held"
    await api.put("/v1/customers/C1/open-items", {"items": [
        {"invoice_id": "I1", "amount": "900", "currency": "EUR", "due_on": days(10)},
        {"invoice_id": "CN-1", "amount": "-150", "currency": "EUR", "due_on": days(0)}]},
        role="ledger")
    released = await order(api, "H")
    assert released["status"] == "approved" and released["reserved"] == "200.00"
    assert released["decisions"][-1]["reasons"][0]["code"] == "AUTO_RELEASE"
    assert (await exposure(api))["exposure"] == "950.00"


async def _race(api, path: str, body: dict, n: int = 10) -> list:
    return list(await asyncio.gather(*(api.post(path, body, role="ledger") for _ in range(n))))


async def test_identical_invoices_racing_post_once(api):
    await account(api, limit="10000")
    await check(api, "O1", "1000")
    body = {"invoice_id": "I1", "customer_id": "C1", "amount": "600", "currency": "EUR",
            "due_on": days(30), "order_id": "O1"}
    replies = await _race(api, "/v1/invoices", body)
    assert sorted(r.status_code for r in replies) == [200] * 9 + [201], [r.text for r in replies]
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in replies) == 9
    assert len({r.text for r in replies}) == 1, "every reply is the original result"
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("600.00", "400.00")


async def test_identical_payments_racing_apply_once(api):
    await account(api, limit="10000")
    await invoice(api, "I1", "500")
    body = {"payment_id": "P1", "customer_id": "C1", "amount": "700", "currency": "EUR"}
    replies = await _race(api, "/v1/payments", body)
    assert sorted(r.status_code for r in replies) == [200] * 9 + [201], [r.text for r in replies]
    assert len({r.text for r in replies}) == 1
    assert (await exposure(api))["open_receivables"] == "-200.00", "unapplied credit once"
