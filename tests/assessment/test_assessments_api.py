"""Assessments through the API: a worked example from evidence to applied limit, replays,
409s, supersession, overrides, auto-release, the credit file and the downgrade alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text

from app import clock
from app.assessment.defaults import DEFAULT_SCORECARD
from app.assessment.schemas import ScorecardIn
from tests.api import Api
from tests.helpers import account, check, history, order

# The worked example (DESIGN 2.1, README "Scorecard", the shipped default scorecard):
#
#   factor             evidence                          value   band         pts  w   wxpts
#   current_ratio      600,000 / 400,000                 1.5     [1.5, 2.0)    75  12    900
#   quick_ratio        (600,000 - 150,000) / 400,000     1.125   [1.0, -)     100   8    800
#   debt_ratio         900,000 / 1,500,000               0.6     [0.6, 0.8)    35  10    350
#   net_margin         120,000 / 3,000,000               0.04    [0.02, 0.05)  50  10    500
#   interest_cover     200,000 / 50,000                  4       [3, 5)        70   8    560
#   years_in_business  14                                14      [10, -)      100   8    800
#   external_score     72                                72      [60, 80)      75  16   1200
#   industry_risk      medium = 1                        1       [1, 2)        60   6    360
#   payment_index      no payments yet: missing          -       -             50  14    700
#   days_beyond_terms  no payments yet: missing          -       -             50   8    400
#                                                                          Σ w = 100  6570
#   score = 6570 / 100 = 65.70 → A (A starts at 65, AA at 75)
#
#   A's limit rules:  0.12 x tangible net worth (600,000 - 100,000 = 500,000)  = 60,000
#                     0.20 x working capital (600,000 - 400,000 = 200,000)    = 40,000
#                     2 x expected monthly purchases 18,750.50                = 37,501  ← binds
#                     max: null (off)
#   suggested limit = 37,501 rounded down to 1,000 = 37,000
#   terms: A → 45 days; review: A → 12 months: 2024-02-29 + 12 months = 2025-02-28 (clamped)
EVIDENCE: dict[str, Any] = {
    "assessment_id": "A-ACME-1", "as_of": "2024-02-29",
    "financials": {"currency": "EUR", "period_end": "2023-12-31",
                   "current_assets": "600000", "current_liabilities": "400000",
                   "inventory": "150000", "total_assets": "1500000",
                   "total_liabilities": "900000", "equity": "600000",
                   "intangible_assets": "100000", "revenue": "3000000",
                   "net_income": "120000", "operating_income": "200000",
                   "interest_expense": "50000"},
    "external_score": {"provider": "bureau", "score": 72, "as_of": "2024-01-15"},
    "years_in_business": 14, "industry_risk": "medium",
    "expected_monthly_purchases": "18750.50", "note": "annual review",
}
BASE = "/v1/customers/ACME/assessments"


async def propose(api: Api, body: dict[str, Any] | None = None, customer: str = "ACME",
                  expect: int = 201) -> dict[str, Any]:
    r = await api.post(f"/v1/customers/{customer}/assessments", body or EVIDENCE,
                       role="controller")
    assert r.status_code == expect, r.text
    return dict(r.json())


async def apply(api: Api, assessment_id: str = "A-ACME-1", expect: int = 200,
                **body: Any) -> Any:
    r = await api.post(f"{BASE}/{assessment_id}/apply", {"reason": "committee", **body},
                       role="controller")
    assert r.status_code == expect, r.text
    return r


def entries(items: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in items if e["event"] == event]


async def test_worked_example_from_evidence_to_applied_limit(aapi: Api) -> None:
    await account(aapi, "ACME", limit="10000")
    # A held order: 11,000 on a 10,000 limit is over the limit, within the 20% band.
    held = await check(aapi, "O-HELD", "11000", customer_id="ACME")
    assert held["outcome"] == "hold"

    a = await propose(aapi)
    assert a["status"] == "proposed" and a["scorecard_version"] == 1
    assert (a["score"], a["grade"]) == ("65.70", "A")
    assert {f["name"]: (f["value"], f["points"], f["weight"]) for f in a["factors"]} == {
        "current_ratio": ("1.5000", 75, 12), "quick_ratio": ("1.1250", 100, 8),
        "debt_ratio": ("0.6000", 35, 10), "net_margin": ("0.0400", 50, 10),
        "interest_cover": ("4.0000", 70, 8), "years_in_business": ("14.0000", 100, 8),
        "external_score": ("72.0000", 75, 16), "industry_risk": ("1.0000", 60, 6),
        "payment_index": (None, 50, 14), "days_beyond_terms": (None, 50, 8)}
    assert a["missing"] == ["payment_index", "days_beyond_terms"]
    assert a["limit_basis"] == [
        {"rule": "pct_tangible_net_worth", "base": "500000.00", "amount": "60000.00",
         "binding": False},
        {"rule": "pct_working_capital", "base": "200000.00", "amount": "40000.00",
         "binding": False},
        {"rule": "months_of_purchases", "base": "18750.50", "amount": "37501.00",
         "binding": True}]
    assert a["suggested_limit"] == "37000.00"
    assert (a["suggested_terms_days"], a["review_due_on"]) == (45, "2025-02-28")
    assert a["current"] == {"credit_limit": "10000.00", "risk_class": "unrated",
                            "payment_terms_days": 30}
    assert entries(await history(aapi, "ACME"), "assessment_proposed")[0]["details"][
        "suggested_limit"] == "37000.00"

    r = await apply(aapi)
    assert "Idempotent-Replayed" not in r.headers
    body = r.json()
    acct = body["account"]
    assert (acct["credit_limit"], acct["risk_class"], acct["payment_terms_days"],
            acct["review_due_on"]) == ("37000.00", "A", 45, "2025-02-28")
    assert body["assessment"]["status"] == "applied"
    assert body["assessment"]["applied"]["overrides"] == {}

    # The limit increase released the held order automatically.
    released = await order(aapi, "O-HELD")
    assert released["status"] == "approved"
    file = await history(aapi, "ACME")
    auto = entries(file, "auto_release")
    assert len(auto) == 1 and auto[0]["order_id"] == "O-HELD"
    assert auto[0]["decision"]["reasons"][0]["code"] == "AUTO_RELEASE"
    # One credit-file entry for the apply, with old → new.
    (applied,) = entries(file, "assessment_applied")
    assert applied["note"] == "committee"
    assert applied["details"]["changes"] == {
        "credit_limit": {"old": "10000.00", "new": "37000.00"},
        "risk_class": {"old": "unrated", "new": "A"},
        "payment_terms_days": {"old": 30, "new": 45},
        "review_due_on": {"old": None, "new": "2025-02-28"}}

    # The identical apply again: a replay, nothing new in the file.
    again = await apply(aapi)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == body
    assert len(entries(await history(aapi, "ACME"), "assessment_applied")) == 1


async def test_propose_replay_and_conflict(aapi: Api) -> None:
    await account(aapi, "ACME")
    first = await propose(aapi)
    # The same meaning spelled differently is the same request.
    same = {**EVIDENCE, "expected_monthly_purchases": 18750.5,
            "financials": {**EVIDENCE["financials"], "equity": "600000.00"}}
    r = await aapi.post(BASE, same, role="controller")
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    assert r.json() == first
    # Another body under the same id: 409, nothing stored.
    r = await aapi.post(BASE, {**EVIDENCE, "years_in_business": 3}, role="controller")
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    # The same id for another customer is another body too.
    await account(aapi, "OTHER")
    r = await aapi.post("/v1/customers/OTHER/assessments", EVIDENCE, role="controller")
    assert r.status_code == 409
    listed = (await aapi.get(BASE, role="controller")).json()
    assert [x["assessment_id"] for x in listed] == ["A-ACME-1"]
    assert (await aapi.get("/v1/customers/OTHER/assessments")).json() == []
    assert len(entries(await history(aapi, "ACME"), "assessment_proposed")) == 1


async def test_list_newest_first_and_get_one(aapi: Api) -> None:
    await account(aapi, "ACME")
    for n in (1, 2, 3):
        await propose(aapi, {**EVIDENCE, "assessment_id": f"A-{n}"})
    listed = (await aapi.get(BASE, role="controller")).json()
    assert [x["assessment_id"] for x in listed] == ["A-3", "A-2", "A-1"]
    one = await aapi.get(f"{BASE}/A-2", role="controller")
    assert one.status_code == 200 and one.json() == listed[1]


async def test_apply_conflicts_and_supersession(aapi: Api) -> None:
    await account(aapi, "ACME")
    await propose(aapi)
    await apply(aapi)
    # Another body on an applied assessment: 409.
    r = await apply(aapi, expect=409, credit_limit="5000")
    assert r.json()["code"] == "conflict"
    await propose(aapi, {**EVIDENCE, "assessment_id": "A-ACME-2",
                         "expected_monthly_purchases": "10000"})
    r = await apply(aapi, "A-ACME-2")
    # 2 x 10,000 = 20,000 binds now.
    assert r.json()["account"]["credit_limit"] == "20000.00"
    assert r.json()["assessment"]["status"] == "applied"
    first = (await aapi.get(f"{BASE}/A-ACME-1")).json()
    assert first["status"] == "superseded" and first["superseded_at"] is not None
    # A superseded assessment cannot be applied, not even as a replay.
    r = await apply(aapi, "A-ACME-1", expect=409)
    assert r.json()["code"] == "assessment_superseded"
    assert (await aapi.get("/v1/customers/ACME")).json()["credit_limit"] == "20000.00"
    (latest, _older) = entries(await history(aapi, "ACME"), "assessment_applied")
    assert latest["details"]["superseded"] == ["A-ACME-1"]


async def test_overrides_are_applied_and_recorded(aapi: Api) -> None:
    await account(aapi, "ACME")
    await propose(aapi)  # grade A, suggested 37,000
    r = await apply(aapi, credit_limit="20000", risk_class="BBB")
    acct = r.json()["account"]
    # Terms and review follow the class applied: BBB → 30 days, 6 months from 2024-02-29.
    assert (acct["credit_limit"], acct["risk_class"], acct["payment_terms_days"],
            acct["review_due_on"]) == ("20000.00", "BBB", 30, "2024-08-29")
    applied = r.json()["assessment"]["applied"]
    assert applied["overrides"] == {"credit_limit": "20000.00", "risk_class": "BBB"}
    assert r.json()["assessment"]["grade"] == "A"  # the assessment itself is unchanged
    (entry,) = entries(await history(aapi, "ACME"), "assessment_applied")
    assert entry["details"]["overrides"] == {"credit_limit": "20000.00", "risk_class": "BBB"}
    assert entry["details"]["changes"]["credit_limit"] == {"old": "10000.00",
                                                          "new": "20000.00"}


async def test_as_of_defaults_to_today_and_may_not_be_in_the_future(aapi: Api) -> None:
    await account(aapi, "ACME")
    body = {k: v for k, v in EVIDENCE.items() if k != "as_of"}
    a = await propose(aapi, body)
    assert a["as_of"] == clock.today().isoformat()
    tomorrow = (clock.today() + dt.timedelta(days=1)).isoformat()
    r = await aapi.post(BASE, {**EVIDENCE, "assessment_id": "A-F", "as_of": tomorrow})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.as_of"
    assert [x["assessment_id"] for x in (await aapi.get(BASE)).json()] == ["A-ACME-1"]


async def test_financials_in_another_currency_need_a_rate(aapi: Api) -> None:
    await account(aapi, "ACME")
    body = {**EVIDENCE, "financials": {**EVIDENCE["financials"], "currency": "USD"}}
    r = await aapi.post(BASE, body, role="controller")
    assert r.status_code == 422 and r.json()["code"] == "fx_rate_missing"
    assert r.headers["content-type"] == "application/problem+json"
    assert (await aapi.get(BASE)).json() == []


async def test_a_limit_rule_may_use_our_invoiced_sales(aapi: Api) -> None:
    # Without expected purchases, the months-of-purchases rule uses invoiced_365d / 12;
    # with nothing invoiced it has no data, so working capital binds: 0.20 x 200,000.
    await account(aapi, "ACME")
    body = {k: v for k, v in EVIDENCE.items() if k != "expected_monthly_purchases"}
    a = await propose(aapi, body)
    assert [b["rule"] for b in a["limit_basis"]] == ["pct_tangible_net_worth",
                                                     "pct_working_capital"]
    assert a["suggested_limit"] == "40000.00"


async def test_grade_downgrade_alert_only_when_a_grade_is_replaced(aapi: Api, db) -> None:
    async def downgrades(customer_id: str) -> list[tuple[str, dict[str, Any]]]:
        async with db.autocommit() as conn:
            rows = await conn.execute(text(
                "SELECT status, details FROM alerts WHERE kind = 'GRADE_DOWNGRADE' "
                "AND customer_id = :c"), {"c": customer_id})
            return [(r.status, r.details) for r in rows]

    await account(aapi, "ACME", risk_class="unrated")
    await account(aapi, "GOOD", risk_class="A")
    await propose(aapi, {**EVIDENCE, "assessment_id": "U-1"})
    await apply(aapi, "U-1", risk_class="CCC")  # unrated → CCC: no downgrade
    assert await downgrades("ACME") == []
    await propose(aapi, {**EVIDENCE, "assessment_id": "G-1"}, customer="GOOD")
    r = await aapi.post("/v1/customers/GOOD/assessments/G-1/apply",
                        {"reason": "weaker", "risk_class": "BB"})
    assert r.status_code == 200, r.text
    assert await downgrades("GOOD") == [
        ("open", {"from_class": "A", "to_class": "BB", "assessment_id": "G-1"})]
    await propose(aapi, {**EVIDENCE, "assessment_id": "G-2"}, customer="GOOD")
    r = await aapi.post("/v1/customers/GOOD/assessments/G-2/apply",
                        {"reason": "better"})  # BB → A: an upgrade resolves it
    assert r.status_code == 200, r.text
    assert [status for status, _ in await downgrades("GOOD")] == ["resolved"]


async def test_scorecard_get_put_and_history(aapi: Api) -> None:
    r = await aapi.get("/v1/scorecard", role="controller")
    assert r.status_code == 200
    shipped = r.json()
    assert shipped["version"] == 1 and shipped["created_by"] == "migration"
    # The migration seeded exactly the documented default.
    expected = ScorecardIn.model_validate(DEFAULT_SCORECARD)
    assert ScorecardIn.model_validate({k: shipped[k] for k in DEFAULT_SCORECARD}) == expected
    assert shipped["grades"][0] == {"grade": "AAA", "min_score": "85"}

    stricter = {**DEFAULT_SCORECARD, "limit_rounding": "5000", "reason": "coarser limits"}
    r = await aapi.put("/v1/scorecard", stricter, role="admin")
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["limit_rounding"]) == (2, "5000.00")
    assert (await aapi.get("/v1/scorecard")).json()["version"] == 2
    versions = (await aapi.get("/v1/scorecard/history", role="controller")).json()
    assert [(v["version"], v["note"]) for v in versions] == [(2, "coarser limits"),
                                                              (1, "the shipped default scorecard")]
    # New assessments use the new version: 37,501 rounded down to 5,000 = 35,000.
    await account(aapi, "ACME")
    a = await propose(aapi)
    assert (a["scorecard_version"], a["suggested_limit"]) == (2, "35000.00")
