"""Alerts a credit check raises itself (DESIGN.md 2.3), in the check's own transaction:
UTILISATION_HIGH when an approval takes exposure to the class's threshold, ORDER_SPIKE when
an order is far above the customer's usual one. One open per kind, however many race."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.helpers import account, check, exposure, history


async def _alerts(db, customer_id: str) -> list[tuple[str, str]]:
    async with db.autocommit() as conn:
        rows = await conn.execute(text(
            "SELECT kind, status FROM alerts WHERE customer_id = :c ORDER BY raised_at"),
            {"c": customer_id})
        return [(r.kind, r.status) for r in rows]


async def test_an_approval_reaching_the_threshold_raises_utilisation_high_once(api, db):
    await account(api, "U1", "1000")
    await check(api, "U-1", "899.99", "U1")  # 89.999 %: below the default 0.90
    assert await _alerts(db, "U1") == []
    decision = await check(api, "U-2", "0.01", "U1")  # exactly 90 %: "≥" holds
    assert decision["outcome"] == "approve"
    assert await _alerts(db, "U1") == [("UTILISATION_HIGH", "open")]
    await check(api, "U-3", "50", "U1")  # still high: no second alert
    assert await _alerts(db, "U1") == [("UTILISATION_HIGH", "open")]
    raised = [e for e in await history(api, "U1") if e["event"] == "alert_raised"]
    assert len(raised) == 1 and raised[0]["details"]["kind"] == "UTILISATION_HIGH"
    assert raised[0]["details"]["details"]["utilisation"] == "0.9000"
    assert (await exposure(api, "U1"))["open_orders"] == "950.00"


async def test_a_hold_changes_no_exposure_and_raises_nothing(api, db):
    await account(api, "U2", "1000")
    assert (await check(api, "H-1", "1100", "U2"))["outcome"] == "hold"
    assert await _alerts(db, "U2") == []


async def test_racing_approvals_across_the_threshold_raise_one_alert(api, db):
    await account(api, "U3", "10000")
    results = await asyncio.gather(*(check(api, f"R-{i}", "1000", "U3") for i in range(12)))
    assert sorted(r["outcome"] for r in results) == ["approve"] * 10 + ["hold"] * 2
    assert await _alerts(db, "U3") == [("UTILISATION_HIGH", "open")]


async def test_an_order_three_times_the_usual_raises_order_spike(api, db):
    await account(api, "S1", "100000")
    for i in range(4):
        await check(api, f"S-{i}", "100", "S1")
    await check(api, "S-big-early", "1000", "S1")  # only 4 previous checks: no spike yet
    assert await _alerts(db, "S1") == []
    # Now 5 previous checks averaging (400 + 1000) / 5 = 280: 3 x 280 = 840.
    await check(api, "S-840", "840", "S1")  # not above three times the average
    assert await _alerts(db, "S1") == []
    # 6 previous, average (1400 + 840) / 6 = 373.33..., 3 x = 1120: 1120.01 is above it.
    await check(api, "S-spike", "1120.01", "S1")
    assert await _alerts(db, "S1") == [("ORDER_SPIKE", "open")]
    await check(api, "S-spike-2", "9000", "S1")
    assert await _alerts(db, "S1") == [("ORDER_SPIKE", "open")], "one open per kind"
