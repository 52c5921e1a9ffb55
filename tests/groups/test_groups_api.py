"""Credit groups: create, replace, read; members join, move and leave; the group's exposure is
its members' summed; an unknown group or another currency is 422; reconcile covers groups."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from app.db.engine import Database
from app.reconcile import Drift, find_drift, repair
from tests.api import Api
from tests.helpers import account, check, days, history, invoice, order, pay

GROUP = {"name": "Acme Holding", "currency": "EUR", "credit_limit": "1000"}


async def group(api: Api, group_id: str = "G1", **terms: Any) -> dict[str, Any]:
    r = await api.put(f"/v1/groups/{group_id}", {**GROUP, **terms})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def group_exposure(api: Api, group_id: str = "G1") -> dict[str, Any]:
    r = await api.get(f"/v1/groups/{group_id}/exposure", role="order-entry")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def join(api: Api, customer_id: str, group_id: str | None) -> dict[str, Any]:
    r = await api.patch(f"/v1/customers/{customer_id}", {"group_id": group_id})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def version(db: Database, group_id: str = "G1") -> int:
    async with db.autocommit() as conn:
        found = await conn.execute(text("SELECT version FROM credit_groups WHERE group_id = :g"),
                                   {"g": group_id})
        return int(found.scalar_one())


def assert_sums(ex: dict[str, Any]) -> None:
    """The group's figures are its members' summed, and available is limit - exposure."""
    members = ex["members"]
    for name in ("open_receivables", "open_orders", "exposure"):
        assert Decimal(ex[name]) == sum((Decimal(m[name]) for m in members), Decimal(0)), ex
    assert Decimal(ex["available"]) == Decimal(ex["effective_limit"]) - Decimal(ex["exposure"])


async def test_put_creates_then_replaces(api: Api, db: Database) -> None:
    r = await api.put("/v1/groups/G1", GROUP, role="controller")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["credit_limit"] == "1000.00" and created["effective_limit"] == "1000.00"
    assert (created["blocked"], created["block_reason"], created["member_count"]) == \
        (False, None, 0)
    assert await version(db) == 1
    same = await api.put("/v1/groups/G1", GROUP)
    assert same.status_code == 200 and await version(db) == 1, "nothing changed"
    r = await api.put("/v1/groups/G1", {**GROUP, "name": "Acme Group", "credit_limit": "2000.5",
                                        "blocked": True, "block_reason": "insolvency"})
    assert r.status_code == 200, r.text
    assert await version(db) == 2
    got = (await api.get("/v1/groups/G1")).json()
    assert (got["name"], got["credit_limit"], got["blocked"], got["block_reason"]) == \
        ("Acme Group", "2000.50", True, "insolvency")
    assert got["created_at"] == created["created_at"], "replaced, not created again"


async def test_unknown_group_is_404_and_roles_are_enforced(api: Api) -> None:
    for path in ("/v1/groups/NOPE", "/v1/groups/NOPE/exposure"):
        r = await api.get(path)
        assert r.status_code == 404 and r.json()["code"] == "group_not_found", r.text
    await group(api)
    r = await api.put("/v1/groups/G1", GROUP, role="order-entry")
    assert r.status_code == 403
    assert (await api.get("/v1/groups/G1", role="ledger")).status_code == 403
    assert (await api.get("/v1/groups/G1/exposure", role="warehouse")).status_code == 200
    assert (await api.get("/v1/groups/G1", role=None)).status_code == 401


async def test_exposure_is_the_members_summed(api: Api) -> None:
    await group(api)
    await account(api, "C1", limit="5000", group_id="G1")
    await account(api, "C2", limit="5000")
    await account(api, "C3", limit="5000")
    assert (await join(api, "C2", "G1"))["group_id"] == "G1"
    await invoice(api, "I1", "100", "C1")
    await invoice(api, "I2", "40.50", "C2")
    await invoice(api, "I3", "999", "C3")  # not a member
    await check(api, "O1", "200", "C2")
    await pay(api, "P1", "10", "C1")
    ex = await group_exposure(api)
    assert ex == {
        "group_id": "G1", "currency": "EUR", "credit_limit": "1000.00",
        "effective_limit": "1000.00", "open_receivables": "130.50", "open_orders": "200.00",
        "exposure": "330.50", "available": "669.50",
        "members": [
            {"customer_id": "C1", "open_receivables": "90.00", "open_orders": "0.00",
             "exposure": "90.00"},
            {"customer_id": "C2", "open_receivables": "40.50", "open_orders": "200.00",
             "exposure": "240.50"}]}
    assert (await api.get("/v1/groups/G1")).json()["member_count"] == 2
    # A PUT replaces the terms and keeps the figures the members make.
    await group(api, credit_limit="300")
    after = await group_exposure(api)
    assert (after["exposure"], after["available"]) == ("330.50", "-30.50")


async def test_a_move_moves_the_exposure_and_is_in_the_credit_file(api: Api, db: Database
                                                                   ) -> None:
    await group(api, "G1")
    await group(api, "G2")
    await account(api, "C1", limit="5000", group_id="G1")
    await account(api, "C2", limit="5000", group_id="G1")
    await invoice(api, "I1", "100", "C1")
    await check(api, "O1", "50", "C2")
    async with db.autocommit() as conn:
        before = (await conn.execute(text(
            "SELECT terms_version FROM accounts WHERE customer_id = 'C2'"))).scalar_one()
    moved = await api.patch("/v1/customers/C2", {"group_id": "G2", "reason": "sold to G2"})
    assert moved.status_code == 200 and moved.json()["group_id"] == "G2", moved.text
    g1, g2 = await group_exposure(api, "G1"), await group_exposure(api, "G2")
    assert (g1["exposure"], [m["customer_id"] for m in g1["members"]]) == ("100.00", ["C1"])
    assert (g2["exposure"], [m["customer_id"] for m in g2["members"]]) == ("50.00", ["C2"])
    assert_sums(g1)
    assert_sums(g2)
    entry = (await history(api, "C2"))[0]
    assert entry["event"] == "account_changed" and entry["note"] == "sold to G2"
    assert entry["details"]["changes"] == {"group_id": {"old": "G1", "new": "G2"}}
    async with db.autocommit() as conn:
        after = (await conn.execute(text(
            "SELECT terms_version FROM accounts WHERE customer_id = 'C2'"))).scalar_one()
    assert after == before + 1, "a move is a change of terms"
    left = await join(api, "C2", None)
    assert left["group_id"] is None
    g2 = await group_exposure(api, "G2")
    assert (g2["exposure"], g2["members"]) == ("0.00", [])
    assert (await history(api, "C2"))[0]["details"]["changes"] == {
        "group_id": {"old": "G2", "new": None}}
    # A PUT replaces the whole account: one that leaves group_id out leaves its group.
    await account(api, "C1", limit="5000")
    assert (await group_exposure(api, "G1"))["members"] == []
    async with db.autocommit() as conn:
        assert await find_drift(conn) == []


async def test_unknown_group_and_other_currency_are_422(api: Api) -> None:
    await group(api, "G1")
    await group(api, "GU", currency="USD")
    r = await api.put("/v1/customers/C1", {"name": "C1", "currency": "EUR",
                                           "credit_limit": "100", "group_id": "NOPE"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_group", r.text
    assert (await api.get("/v1/customers/C1")).status_code == 404, "nothing was created"
    r = await api.put("/v1/customers/C1", {"name": "C1", "currency": "EUR",
                                           "credit_limit": "100", "group_id": "GU"})
    assert r.status_code == 422 and r.json()["code"] == "group_currency_mismatch", r.text
    await account(api, "C1", limit="100", group_id="G1")
    for body, code in [({"group_id": "NOPE"}, "unknown_group"),
                       ({"group_id": "GU"}, "group_currency_mismatch"),
                       ({"currency": "USD"}, "group_currency_mismatch")]:
        r = await api.patch("/v1/customers/C1", body)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)
    got = (await api.get("/v1/customers/C1")).json()
    assert (got["group_id"], got["currency"]) == ("G1", "EUR")
    assert [e["event"] for e in await history(api, "C1")] == ["account_created"]
    # Both at once is fine: the account moves to USD and into the USD group.
    both = await api.patch("/v1/customers/C1", {"currency": "USD", "group_id": "GU"})
    assert both.status_code == 200 and both.json()["group_id"] == "GU", both.text
    # A group's currency cannot move away from its members'; without members it can.
    r = await api.put("/v1/groups/GU", {**GROUP, "currency": "CHF"})
    assert r.status_code == 422 and r.json()["code"] == "group_currency_mismatch", r.text
    assert (await api.get("/v1/groups/GU")).json()["currency"] == "USD"
    assert (await group(api, "G1", currency="CHF"))["currency"] == "CHF"


async def test_a_group_change_is_in_every_members_credit_file(api: Api) -> None:
    await group(api)
    await account(api, "C1", group_id="G1")
    await account(api, "C2", group_id="G1")
    r = await api.put("/v1/groups/G1", {**GROUP, "credit_limit": "1500", "reason": "review"})
    assert r.status_code == 200, r.text
    for customer_id in ("C1", "C2"):
        entry = (await history(api, customer_id))[0]
        assert (entry["event"], entry["note"]) == ("group_changed", "review")
        assert entry["details"] == {"group_id": "G1", "changes": {
            "credit_limit": {"old": "1000.00", "new": "1500.00"}}}


async def test_raising_the_group_limit_releases_held_members(api: Api) -> None:
    await group(api, credit_limit="100")
    await account(api, "C1", limit="1000", group_id="G1")
    await account(api, "C2", limit="1000", group_id="G1")
    assert (await check(api, "O1", "80", "C1"))["outcome"] == "approve"
    held = await check(api, "O2", "30", "C2")  # 110 > 100, within the 20 % band
    assert (held["outcome"], [r["code"] for r in held["reasons"]]) == \
        ("hold", ["GROUP_OVER_LIMIT"]), held
    await group(api, credit_limit="110")
    released = await order(api, "O2")
    assert released["status"] == "approved", released
    assert released["decisions"][-1]["kind"] == "auto_release"
    assert (await group_exposure(api))["exposure"] == "110.00"


async def test_unblocking_the_group_releases_held_members(api: Api) -> None:
    await group(api, credit_limit="100")
    await account(api, "C1", limit="1000", group_id="G1")
    held = await check(api, "O1", "110", "C1")
    assert held["outcome"] == "hold", held
    await group(api, credit_limit="100", blocked=True, block_reason="dispute")
    await group(api, credit_limit="120")  # unblocked and raised at once
    assert (await order(api, "O1"))["status"] == "approved"


async def test_leaving_a_group_frees_its_headroom_for_the_others(api: Api) -> None:
    await group(api, credit_limit="100")
    await account(api, "C1", limit="1000", group_id="G1")
    await account(api, "C2", limit="1000", group_id="G1")
    assert (await check(api, "O1", "90", "C1"))["outcome"] == "approve"
    assert (await check(api, "O2", "20", "C2"))["outcome"] == "hold"
    assert (await check(api, "O3", "15", "C1"))["outcome"] == "hold"
    await join(api, "C2", None)  # C2 is free of the group: its own limit alone binds it
    assert (await order(api, "O2"))["status"] == "approved"
    assert (await order(api, "O3"))["status"] == "held", "C1's group is as full as before"
    await group(api, "G2", credit_limit="1000")
    await join(api, "C1", "G2")  # C1 moves to a roomier group
    assert (await order(api, "O3"))["status"] == "approved"


async def test_crossing_moves_neither_deadlock_nor_drift(api: Api, db: Database) -> None:
    """A moves G1 -> G2 while B moves G2 -> G1, over and over: both groups are locked in id
    order before either account, so no round waits on the other."""
    await group(api, "G1")
    await group(api, "G2")
    await account(api, "A", limit="1000", group_id="G1")
    await account(api, "B", limit="1000", group_id="G2")
    await invoice(api, "IA", "10", "A")
    await invoice(api, "IB", "1", "B")
    where = {"A": "G1", "B": "G2"}
    for _ in range(10):
        where = {"A": where["B"], "B": where["A"]}
        answers = await asyncio.gather(*(api.patch(f"/v1/customers/{c}", {"group_id": g})
                                          for c, g in where.items()))
        assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    for g in ("G1", "G2"):
        assert_sums(await group_exposure(api, g))
    async with db.autocommit() as conn:
        assert await find_drift(conn) == []


async def test_reconcile_finds_and_repairs_group_drift(api: Api, db: Database) -> None:
    await group(api)
    await account(api, "C1", group_id="G1")
    await invoice(api, "I1", "100", "C1")
    await check(api, "O1", "20", "C1")
    async with db.begin() as conn:
        assert await find_drift(conn) == []
        await conn.execute(text("UPDATE credit_groups SET open_orders = open_orders + 1, "
                                "member_count = 3"))
        # An account's own drift moves its group through the trigger: repaired together.
        await conn.execute(text("UPDATE accounts SET open_receivables = 150"))
    async with db.begin() as conn:
        drift = await find_drift(conn)
        assert Drift("G1", "group open_orders", Decimal("21.0000"), Decimal("20.0000")) in drift
        assert Drift("G1", "group member_count", 3, 1) in drift
        assert Drift("C1", "open_receivables", Decimal("150.0000"), Decimal("100.0000")) \
            in drift
        assert not [d for d in drift if d.aggregate == "group open_receivables"]
        assert await repair(conn, drift) == len(drift)
    async with db.autocommit() as conn:
        assert await find_drift(conn) == []
    ex = await group_exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("100.00", "20.00")


async def test_a_simulation_redecides_a_members_check_with_its_group(api):
    """The group's hold, and an approval converted from another currency, stay as they were
    under the very same policy (the inputs keep the group; the amount is the converted one)."""
    assert (await api.put("/v1/groups/SIMG", {"name": "Sim", "currency": "EUR",
                                               "credit_limit": "1000"})).status_code == 201
    for member in ("SIM1", "SIM2"):
        r = await api.put(f"/v1/customers/{member}", {
            "name": member, "currency": "EUR", "credit_limit": "5000", "group_id": "SIMG"})
        assert r.status_code == 201, r.text
    assert (await api.put("/v1/fx-rates/USD/EUR", {"rate": "0.5", "as_of": days(0)})
            ).status_code == 201

    async def checked(order_id: str, customer_id: str, amount: str, currency: str) -> str:
        r = await api.post("/v1/credit-checks", {"order_id": order_id, "customer_id": customer_id,
                                                 "amount": amount, "currency": currency},
                           role="order-entry")
        assert r.status_code == 201, r.text
        return str(r.json()["outcome"])

    assert await checked("SIM-A", "SIM1", "1800", "USD") == "approve"  # 900 of the 1000
    assert await checked("SIM-B", "SIM2", "150", "EUR") == "hold"  # GROUP_OVER_LIMIT
    policy = {"prepay_required": False, "hold_band": "0.20", "max_days_past_due": 30,
              "prepay_days_past_due": 90, "overdue_tolerance": "0"}
    r = await api.post("/v1/policies/unrated/simulate",
                       {"policy": policy, "from": days(0), "to": days(0)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["decisions"], body["changed_count"]) == (2, 0), body
    assert body["current"]["amount_approved"] == "900.00", body
