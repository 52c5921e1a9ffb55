"""Policy simulation (DESIGN.md 2.4): stored entry credit checks re-decided on their own
inputs under proposed parameters; nothing changes."""

from __future__ import annotations

import datetime as dt

from app import clock
from tests.helpers import account, check, days, exposure, today

DEFAULTS = {"prepay_required": False, "hold_band": "0.20", "max_days_past_due": 30,
            "prepay_days_past_due": 90, "overdue_tolerance": "0"}


async def _mixed_window(api) -> None:
    """Class A, limit 1,000. By hand, with the default 20 % band (tolerance 1,200):
    S-1 500 -> 500 approve; S-2 400 -> 900 approve; S-3 150 -> 1,050 hold; S-4 260 ->
    1,160 hold; S-5 400 -> 1,300 prepay. Holds reserve nothing, so each later check sees 900.
    With a 5 % band (tolerance 1,050): S-3 (1,050, not above it) stays a hold, S-4 (1,160)
    becomes prepay; nothing else moves. A class-BB customer's hold at 1,100 would become
    prepay too, but it is not of the class simulated."""
    await account(api, "SA", "1000", risk_class="A")
    for order_id, amount in (("S-1", "500"), ("S-2", "400"), ("S-3", "150"), ("S-4", "260"),
                             ("S-5", "400")):
        await check(api, order_id, amount, "SA")
    await account(api, "SB", "1000", risk_class="BB")
    await check(api, "B-1", "1100", "SB")


async def _simulate(api, policy, start=None, end=None, risk_class="A"):
    return await api.post(f"/v1/policies/{risk_class}/simulate", {
        "policy": policy, "from": start or days(0), "to": end or days(0)}, role="controller")


async def test_the_current_parameters_change_nothing(api):
    await _mixed_window(api)
    current = (await api.get("/v1/policies/A", role="controller")).json()
    policy = {k: current[k] for k in DEFAULTS}
    r = await _simulate(api, policy)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decisions"] == 5
    assert body["current"] == {"approve": 2, "hold": 2, "prepay": 1, "amount_approved": "900.00"}
    assert body["proposed"] == body["current"]
    assert body["changed"] == [] and body["changed_count"] == 0


async def test_a_tighter_band_changes_exactly_the_predicted_decision(api):
    await _mixed_window(api)
    before = await exposure(api, "SA")
    r = await _simulate(api, {**DEFAULTS, "hold_band": "0.05"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed_count"] == 1
    [changed] = body["changed"]
    assert (changed["order_id"], changed["was"], changed["now"]) == ("S-4", "hold", "prepay")
    assert changed["amount"] == "260.00" and changed["customer_id"] == "SA"
    assert [r["code"] for r in changed["reasons"]] == ["OVER_LIMIT_BEYOND_TOLERANCE"]
    assert body["proposed"] == {"approve": 2, "hold": 1, "prepay": 2, "amount_approved": "900.00"}
    assert await exposure(api, "SA") == before, "a simulation changes nothing"
    policy = (await api.get("/v1/policies/A", role="controller")).json()
    assert policy["hold_band"] == "0.2"


async def test_the_window_is_inclusive_and_counts_by_the_day_decided(api, monkeypatch):
    await account(api, "SW", "1000", risk_class="A")
    real_now = clock.now
    yesterday = real_now() - dt.timedelta(days=1)
    monkeypatch.setattr(clock, "now", lambda: yesterday)
    await check(api, "W-old", "1100", "SW")
    monkeypatch.setattr(clock, "now", real_now)
    await check(api, "W-new", "50", "SW")
    tighter = {**DEFAULTS, "hold_band": "0.05"}
    only_today = (await _simulate(api, tighter)).json()
    assert only_today["decisions"] == 1 and only_today["changed_count"] == 0
    both = (await _simulate(api, tighter, start=days(-1), end=days(0))).json()
    assert both["decisions"] == 2 and [c["order_id"] for c in both["changed"]] == ["W-old"]


async def test_bad_simulations_are_refused(api):
    for body, status in (
        ({"policy": DEFAULTS, "from": days(0), "to": days(-1)}, 422),
        ({"policy": DEFAULTS, "from": days(-400), "to": days(0)}, 422),
        ({"policy": {**DEFAULTS, "hold_band": "-1"}, "from": days(0), "to": days(0)}, 422),
        ({"policy": DEFAULTS, "from": "yesterday", "to": days(0)}, 422),
        ({"policy": DEFAULTS, "to": days(0)}, 422),
    ):
        r = await api.post("/v1/policies/A/simulate", body, role="controller")
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.post("/v1/policies/ZZZ/simulate", {"policy": DEFAULTS, "from": days(0),
                                                     "to": days(0)}, role="controller")
    assert r.status_code == 404
    r = await api.post("/v1/policies/A/simulate", {"policy": DEFAULTS, "from": days(0),
                                                   "to": days(0)}, role="order-entry")
    assert r.status_code == 403
    assert today() == clock.today()
