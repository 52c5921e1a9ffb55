"""Orders after the check: amend, dispatch, cancel, release, reject, expire, the hold queue."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import update

from app.main import create_app
from app.metrics import RESERVATIONS_EXPIRED
from app.orders.service import expire_reservations
from app.orders.tables import orders
from app.settings import Settings
from tests.helpers import account, check, events, exposure, history, invoice, order, pay


async def test_decrease_releases_the_difference(api):
    await account(api, limit="10000")
    await check(api, "O1", "4000")
    r = await api.patch("/v1/orders/O1", {"amount": "2500"}, role="order-entry")
    assert r.status_code == 200, r.text
    assert r.json()["decision"] is None
    assert r.json()["order"]["amount"] == "2500.00"
    stored = await order(api, "O1")
    assert (stored["status"], stored["amount"], stored["reserved"]) == \
        ("approved", "2500.00", "2500.00")
    assert (await exposure(api))["open_orders"] == "2500.00"
    decreased = (await history(api))[0]
    assert decreased["event"] == "amount_decreased" and decreased["order_id"] == "O1"
    assert decreased["details"] == {"old_amount": "4000.00", "new_amount": "2500.00",
                                    "released": "1500.00"}


async def test_increase_is_checked_for_the_difference(api):
    await account(api, limit="10000")
    await check(api, "O1", "4000")
    r = await api.patch("/v1/orders/O1", {"amount": "9000"}, role="order-entry")
    body = r.json()
    assert body["decision"]["outcome"] == "approve" and body["decision"]["amount"] == "5000.00"
    assert body["order"]["reserved"] == "9000.00"
    assert (await exposure(api))["open_orders"] == "9000.00"


async def test_increase_that_does_not_fit_changes_nothing(api):
    await account(api, limit="10000")
    await check(api, "O1", "8000")
    r = await api.patch("/v1/orders/O1", {"amount": "11000"}, role="order-entry")
    body = r.json()
    assert body["decision"]["outcome"] == "hold"
    assert body["order"]["status"] == "approved" and body["order"]["amount"] == "8000.00"
    assert (await exposure(api))["open_orders"] == "8000.00"
    holds = (await api.get("/v1/holds")).json()["items"]
    assert holds == []


async def test_only_approved_orders_can_be_amended(api):
    await account(api, limit="100")
    await check(api, "H", "110")
    r = await api.patch("/v1/orders/H", {"amount": "50"}, role="order-entry")
    assert r.status_code == 409 and r.json()["code"] == "invalid_state"
    held = await order(api, "H")
    assert (held["status"], held["amount"], held["reserved"]) == ("held", "110.00", "0.00")
    assert [d["kind"] for d in held["decisions"]] == ["credit_check"]
    ex = await exposure(api)
    assert ex["held_count"] == 1 and ex["held_orders"] == "110.00"


async def test_dispatch_counts_the_order_once(api):
    await account(api, limit="10000")
    await check(api, "O1", "10000")
    r = await api.post("/v1/orders/O1/dispatch-check", role="warehouse")
    assert r.status_code == 200, r.text
    decision = r.json()
    assert decision["outcome"] == "approve" and decision["kind"] == "dispatch_check"
    assert decision["exposure"]["total"] == "10000.00"
    assert decision["available"] == "0.00"
    assert (await order(api, "O1"))["status"] == "shipped"
    again = await api.post("/v1/orders/O1/dispatch-check", role="warehouse")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == decision


async def test_dispatch_stops_after_a_block_or_lowered_limit(api):
    await account(api, limit="10000")
    await check(api, "O1", "6000")
    await check(api, "O2", "1000")
    await api.patch("/v1/customers/C1", {"credit_limit": "5000"})
    stopped = (await api.post("/v1/orders/O1/dispatch-check", role="warehouse")).json()
    assert stopped["outcome"] == "prepay"
    assert stopped["exposure"]["total"] == "7000.00"
    assert (await order(api, "O1"))["status"] == "approved"
    await api.patch("/v1/customers/C1", {"credit_limit": "10000", "blocked": True})
    blocked = (await api.post("/v1/orders/O2/dispatch-check", role="warehouse")).json()
    assert [r["code"] for r in blocked["reasons"]] == ["CUSTOMER_BLOCKED"]


async def test_dispatch_sees_unlinked_invoices_and_new_overdue_items(api):
    await account(api, limit="10000")
    await check(api, "O1", "5000")
    await invoice(api, "I1", "5500")
    held = (await api.post("/v1/orders/O1/dispatch-check", role="warehouse")).json()
    assert held["outcome"] == "hold"
    await invoice(api, "I2", "10", due_in=-40)
    held = (await api.post("/v1/orders/O1/dispatch-check", role="warehouse")).json()
    assert [r["code"] for r in held["reasons"]] == ["OVER_LIMIT", "OVERDUE_RECEIVABLES"]


async def test_only_approved_orders_can_be_dispatched(api):
    await account(api, limit="100")
    await check(api, "H", "110")
    r = await api.post("/v1/orders/H/dispatch-check", role="warehouse")
    assert r.status_code == 409 and r.json()["code"] == "not_dispatchable"
    held = await order(api, "H")
    assert held["status"] == "held" and [d["kind"] for d in held["decisions"]] == \
        ["credit_check"]
    assert "dispatch_check" not in await events(api)
    missing = await api.post("/v1/orders/NOPE/dispatch-check", role="warehouse")
    assert missing.status_code == 404 and missing.json()["code"] == "order_not_found"


async def test_released_order_skips_limit_rules_at_dispatch_but_not_the_others(api):
    await account(api, limit="1000")
    await check(api, "H", "1100")
    r = await api.post("/v1/orders/H/release", {"reason": "CFO ok"}, role="controller")
    assert r.status_code == 200, r.text
    released = r.json()
    assert released["status"] == "approved" and released["released"] is True
    assert released["decisions"][-1]["reasons"][0]["code"] == "MANUAL_RELEASE"
    assert (await exposure(api))["open_orders"] == "1100.00"
    ok = (await api.post("/v1/orders/H/dispatch-check", role="warehouse")).json()
    assert ok["outcome"] == "approve"

    await check(api, "H2", "100")  # 1100 reserved + 100 = the band edge: held
    await api.post("/v1/orders/H2/release", {"reason": "ok"}, role="controller")
    await api.patch("/v1/customers/C1", {"blocked": True})
    stop = (await api.post("/v1/orders/H2/dispatch-check", role="warehouse")).json()
    assert stop["outcome"] == "prepay"


async def test_cancel_releases_and_repeating_is_harmless(api):
    await account(api, limit="10000")
    await check(api, "O1", "3000")
    for _ in range(2):
        r = await api.post("/v1/orders/O1/cancel", role="order-entry")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await exposure(api))["open_orders"] == "0.00"
    assert (await events(api)).count("order_cancelled") == 1


async def test_cancel_of_a_held_order_leaves_the_queue(api):
    await account(api, limit="100")
    await check(api, "H", "110")
    assert (await api.get("/v1/holds")).json()["items"][0]["order_id"] == "H"
    r = await api.post("/v1/orders/H/cancel", {"reason": "customer withdrew"},
                       role="order-entry")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["reserved"] == "0.00"
    ex = await exposure(api)
    assert ex["held_count"] == 0 and ex["held_orders"] == "0.00"
    assert ex["open_orders"] == "0.00"
    assert (await api.get("/v1/holds")).json()["items"] == []
    cancelled = (await history(api))[0]
    assert (cancelled["event"], cancelled["order_id"]) == ("order_cancelled", "H")
    assert cancelled["note"] == "customer withdrew" and cancelled["actor"] == "test-order-entry"
    assert cancelled["details"] == {"old_status": "held", "released": "0.00"}


async def test_reject(api):
    await account(api, limit="100")
    await check(api, "H", "110")
    r = await api.post("/v1/orders/H/reject", {"reason": "no"}, role="controller")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["reserved"] == "0.00"
    ex = await exposure(api)
    assert ex["held_count"] == 0 and ex["held_orders"] == "0.00" and ex["open_orders"] == "0.00"
    rejected = (await history(api))[0]
    assert (rejected["event"], rejected["order_id"]) == ("order_rejected", "H")
    assert rejected["note"] == "no" and rejected["actor"] == "test-controller"
    bad = await api.post("/v1/orders/H/release", {"reason": "x"}, role="controller")
    assert bad.status_code == 409 and bad.json()["code"] == "invalid_state"
    assert (await order(api, "H"))["status"] == "rejected"
    assert "manual_release" not in await events(api)


async def test_hold_queue_oldest_first_with_cursor(api):
    await account(api, limit="10")
    await account(api, "C2", limit="10")
    for i in range(5):
        await check(api, f"H{i}", "11", customer_id="C1" if i % 2 == 0 else "C2")
    first = (await api.get("/v1/holds", params={"limit": 2})).json()
    assert [o["order_id"] for o in first["items"]] == ["H0", "H1"]
    second = (await api.get("/v1/holds", params={"limit": 2, "cursor": first["next_cursor"]}
                            )).json()
    third = (await api.get("/v1/holds", params={"limit": 2, "cursor": second["next_cursor"]}
                           )).json()
    assert [o["order_id"] for o in second["items"] + third["items"]] == ["H2", "H3", "H4"]
    assert third["next_cursor"] is None
    only_c2 = (await api.get("/v1/holds", params={"customer_id": "C2"})).json()["items"]
    assert [o["order_id"] for o in only_c2] == ["H1", "H3"]


async def test_auto_release_after_payment_oldest_first(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "950")
    await check(api, "H-old", "200")
    await check(api, "H-new", "100")
    paid = await pay(api, "P1", "150")
    assert paid["applied"] == [{"invoice_id": "I1", "amount": "150.00"}]
    old, new = await order(api, "H-old"), await order(api, "H-new")
    assert old["status"] == "approved"
    assert old["decisions"][-1]["kind"] == "auto_release"
    assert old["decisions"][-1]["reasons"][0]["code"] == "AUTO_RELEASE"
    assert new["status"] == "held"  # 800 + 200 + 100 > 1000
    ex = await exposure(api)
    assert ex["open_orders"] == "200.00" and ex["held_count"] == 1
    released = (await history(api))[0]
    assert released["event"] == "auto_release" and released["actor"] == "system"
    assert (released["order_id"], released["decision"]["amount"]) == ("H-old", "200.00")


async def test_auto_release_skips_what_still_does_not_fit(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "950")
    await check(api, "H-big", "250")
    await check(api, "H-small", "100")
    await pay(api, "P1", "100")
    big, small = await order(api, "H-big"), await order(api, "H-small")
    assert (big["status"], big["reserved"]) == ("held", "0.00")  # 850 + 250 > 1000
    assert (small["status"], small["reserved"]) == ("approved", "100.00")
    assert small["decisions"][-1]["kind"] == "auto_release"
    assert [d["kind"] for d in big["decisions"]] == ["credit_check"]
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("850.00", "100.00")
    assert ex["held_count"] == 1 and ex["held_orders"] == "250.00"
    assert (await events(api))[:2] == ["auto_release", "payment_received"]


async def test_auto_release_on_limit_increase_and_unblock(api):
    await account(api, limit="100")
    await check(api, "H", "110")
    await api.patch("/v1/customers/C1", {"blocked": True, "block_reason": "review"})
    await check(api, "B", "50")
    assert (await order(api, "B"))["status"] == "prepay"
    r = await api.patch("/v1/customers/C1", {"credit_limit": "200"})
    assert r.status_code == 200 and r.json()["effective_limit"] == "200.00", r.text
    assert (await order(api, "H"))["status"] == "held"  # still blocked
    assert (await exposure(api))["held_count"] == 1
    r = await api.patch("/v1/customers/C1", {"blocked": False})
    assert r.status_code == 200 and r.json()["blocked"] is False, r.text
    released = await order(api, "H")
    assert (released["status"], released["reserved"]) == ("approved", "110.00")
    assert released["decisions"][-1]["kind"] == "auto_release"
    assert (await order(api, "B"))["status"] == "prepay"  # prepay is final; only holds return
    ex = await exposure(api)
    assert ex["open_orders"] == "110.00" and ex["held_count"] == 0
    assert (await events(api))[:2] == ["auto_release", "account_changed"]


async def test_expiry_releases_the_reservation(api, db):
    await account(api, limit="1000")
    await check(api, "O1", "600")
    await check(api, "H", "600")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    async with db.begin() as conn:
        await conn.execute(update(orders).where(orders.c.order_id == "O1")
                           .values(expires_at=past))
    run = await expire_reservations(db)
    assert run.expired == 1
    assert (await order(api, "O1"))["status"] == "expired"
    assert (await order(api, "H"))["status"] == "approved"
    assert (await exposure(api))["open_orders"] == "600.00"
    assert (await expire_reservations(db)).expired == 0


async def test_reservations_last_the_default_thirty_days(api):
    assert Settings.model_fields["reservation_ttl_days"].default == 30
    await account(api, limit="1000")
    decision = await check(api, "O1", "100")
    decided = dt.datetime.fromisoformat(decision["decided_at"])
    assert dt.datetime.fromisoformat(decision["expires_at"]) - decided == dt.timedelta(days=30)
    assert (await order(api, "O1"))["expires_at"] == decision["expires_at"]


async def test_the_app_expires_lapsed_reservations_by_itself(api, db, settings, keys):
    """The periodic task inside the app, not only `creditgate expire`."""
    await account(api, limit="1000")
    await check(api, "O1", "900")
    await check(api, "O2", "200")  # held: 1100 exceeds the limit, within the band
    assert (await order(api, "O2"))["status"] == "held"
    async with db.begin() as conn:
        await conn.execute(update(orders).where(orders.c.order_id == "O1")
                           .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    expired_before = RESERVATIONS_EXPIRED._value.get()
    ticking = create_app(settings.model_copy(update={"expire_interval_seconds": 0.1}))
    async with ticking.router.lifespan_context(ticking):
        deadline = asyncio.get_running_loop().time() + 5
        while (await order(api, "O1"))["status"] != "expired":
            assert asyncio.get_running_loop().time() < deadline, "never expired"
            await asyncio.sleep(0.1)
    assert RESERVATIONS_EXPIRED._value.get() == expired_before + 1
    released = await order(api, "O2")
    assert released["status"] == "approved", "the freed headroom auto-released the hold"
    assert released["decisions"][-1]["reasons"][0]["code"] == "AUTO_RELEASE"
    assert (await exposure(api))["open_orders"] == "200.00"
