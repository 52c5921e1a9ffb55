"""Every change a neighbour must hear of is an event in the feed, written by the change's own
transaction and carrying the object as it was (DESIGN.md 2.5), driven through the API."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from app import clock
from app.orders.service import expire_reservations
from tests.helpers import account, check, pay


async def _feed(api, at_least: int = 0) -> list[dict[str, Any]]:
    """The whole feed, with at least `at_least` events in it. The feed shows an event once
    no older transaction is still running anywhere on the server (app/events/outbox.py), so
    what this test committed may take a moment to appear."""
    items: list[dict[str, Any]] = []
    for _ in range(100):
        items = (await api.get("/v1/events", params={"limit": 1000})).json()["items"]
        if len(items) >= at_least:
            return items
        await asyncio.sleep(0.05)
    return items


def _types(items: list[dict[str, Any]]) -> list[str]:
    return [i["type"] for i in items]


async def test_orders_accounts_and_alerts_tell_the_feed(api, db, monkeypatch):
    await account(api, "E1", "1000")
    assert await _feed(api) == [], "creating an account is no event"
    r = await api.patch("/v1/customers/E1", {"credit_limit": "2000"})
    assert r.status_code == 200
    held = await check(api, "E-H1", "2100", "E1")
    assert held["outcome"] == "hold"
    await check(api, "E-U1", "10", "NOBODY")  # no account: prepay
    items = await _feed(api, 3)
    assert _types(items) == ["account.limit_changed", "order.held", "order.prepay"]
    limit_changed, order_held, order_prepay = items
    assert limit_changed["data"]["credit_limit"] == "2000.00"
    assert order_held["data"]["status"] == "held" and order_held["customer_id"] == "E1"
    assert order_held["data"]["decisions"][0]["decision_id"] == held["decision_id"]
    assert order_held["data"]["decisions"][0]["reasons"][0]["code"] == "OVER_LIMIT"
    assert order_prepay["data"]["decisions"][0]["reasons"][0]["code"] == "UNKNOWN_CUSTOMER"

    r = await api.post("/v1/orders/E-H1/release", {"reason": "CFO"})
    assert r.status_code == 200
    await check(api, "E-H2", "100", "E1")  # over the limit now: held
    r = await api.post("/v1/orders/E-H2/reject", {"reason": "no"})
    assert r.status_code == 200
    await api.patch("/v1/customers/E1", {"blocked": True, "block_reason": "dispute"})
    await api.patch("/v1/customers/E1", {"blocked": False})
    items = (await _feed(api, 10))[3:]
    assert _types(items) == ["order.released", "alert.raised", "alert.raised", "order.held",
                             "order.rejected", "account.blocked", "account.unblocked"]
    released = items[0]["data"]
    assert released["status"] == "approved" and released["released"] is True
    assert released["decisions"][-1]["reasons"][0]["code"] == "MANUAL_RELEASE"
    assert {i["data"]["kind"] for i in items[1:3]} == {"UTILISATION_HIGH", "LIMIT_EXCEEDED"}
    assert items[4]["data"]["status"] == "rejected"
    assert items[5]["data"]["blocked"] is True and items[6]["data"]["blocked"] is False

    r = await api.post("/v1/orders/E-H1/cancel", role="order-entry")
    assert r.status_code == 200
    resolved = [i for i in (await _feed(api, 12))[10:] if i["type"] == "alert.resolved"]
    assert {i["data"]["kind"] for i in resolved} == {"UTILISATION_HIGH", "LIMIT_EXCEEDED"}
    assert all(i["data"]["status"] == "resolved" for i in resolved)


async def test_automatic_releases_and_expiry_tell_the_feed(api, db):
    await account(api, "E2", "1000")
    await check(api, "E2-A", "800", "E2")
    await check(api, "E2-H", "300", "E2")  # held: 1,100 > 1,000
    await pay(api, "E2-P", "1", "E2")  # unapplied credit: 1,099 still over
    r = await api.patch("/v1/customers/E2", {"credit_limit": "2000"})
    assert r.status_code == 200
    items = [i for i in await _feed(api, 2) if i["customer_id"] == "E2"]
    released = [i for i in items if i["type"] == "order.released"]
    assert len(released) == 1 and released[0]["data"]["order_id"] == "E2-H"
    assert released[0]["data"]["decisions"][-1]["reasons"][0]["code"] == "AUTO_RELEASE"
    later = clock.now() + dt.timedelta(days=31)
    run = await expire_reservations(db, now=later)
    assert run.expired == 2
    expired = [i for i in await _feed(api, 5) if i["type"] == "order.expired"]
    assert sorted(i["data"]["order_id"] for i in expired) == ["E2-A", "E2-H"]
    assert all(i["data"]["status"] == "expired" and i["data"]["reserved"] == "0.00"
               for i in expired)
