"""Bad input for every assessment endpoint: problem+json 4xx naming the field, nothing stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import text

from app.assessment.defaults import DEFAULT_SCORECARD
from tests.api import Api
from tests.assessment.test_assessments_api import BASE, EVIDENCE
from tests.helpers import account

PROBLEM = "application/problem+json"


async def snapshot(db) -> tuple[Any, ...]:
    """Everything these endpoints could write."""
    async with db.autocommit() as conn:
        out = []
        for sql in ("SELECT count(*), max(version) FROM scorecards",
                    "SELECT assessment_id, status FROM assessments ORDER BY 1",
                    "SELECT count(*) FROM credit_file",
                    "SELECT credit_limit, risk_class, payment_terms_days, review_due_on, "
                    "terms_version FROM accounts ORDER BY customer_id"):
            out.append([tuple(r) for r in (await conn.execute(text(sql))).all()])
    return tuple(out)


def problem(r, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = dict(r.json())
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def card(edit) -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT_SCORECARD)
    edit(doc)
    return doc


BAD_SCORECARDS = [
    (card(lambda d: d["grades"].pop()), "body.grades"),                     # six grades
    (card(lambda d: d["grades"][6].update(min_score="10")), "body.grades"),  # 0 uncovered
    (card(lambda d: d["grades"][0].update(min_score="70")), "body.grades"),  # AAA < AA
    (card(lambda d: d["factors"][0].update(weight=0)), "body.factors.0.weight"),
    (card(lambda d: d["factors"][1]["bands"][0].update(min="3", max="1")),
     "body.factors.1.bands.0"),                                            # band order
    (card(lambda d: d["factors"][2].update(name="shoe_size")), "body.factors.2.name"),
    (card(lambda d: d["factors"].__setitem__(9, d["factors"][0])), "body.factors.9.name"),
    (card(lambda d: d["factors"].append(d["factors"][0])), "body.factors"),  # 11 of 10
    (card(lambda d: d["factors"][0]["bands"][0].update(points=101)),
     "body.factors.0.bands.0.points"),
    (card(lambda d: d["limits"].pop("B")), "body.limits"),
    (card(lambda d: d["terms_days"].pop("AAA")), "body.terms_days"),
    (card(lambda d: d["review_months"].update(A=0)), "body.review_months.A"),
    (card(lambda d: d.update(limit_rounding="0")), "body.limit_rounding"),
    (card(lambda d: d["limits"]["A"].update(max="-1")), "body.limits.A.max"),
    (card(lambda d: d.update(extra=1)), "body.extra"),
    (card(lambda d: d.pop("grades")), "body.grades"),
]


@pytest.mark.parametrize(("body", "field"), BAD_SCORECARDS)
async def test_put_scorecard_refuses_bad_cards(aapi: Api, db, body, field) -> None:
    before = await snapshot(db)
    problem(await aapi.put("/v1/scorecard", body, role="admin"), 422, field)
    assert await snapshot(db) == before


async def test_scorecard_roles_and_malformed_json(aapi: Api, db) -> None:
    before = await snapshot(db)
    problem(await aapi.put("/v1/scorecard", DEFAULT_SCORECARD, role="controller"), 403)
    problem(await aapi.get("/v1/scorecard", role="ledger"), 403)
    problem(await aapi.put("/v1/scorecard", DEFAULT_SCORECARD, role=None), 401)
    r = await aapi.request("PUT", "/v1/scorecard", content=b"{oops",
                           headers={"content-type": "application/json"})
    problem(r, 400)
    problem(await aapi.get("/v1/scorecard/history", params={"limit": 0}), 422)
    assert await snapshot(db) == before


def ev(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EVIDENCE)
    for key, value in changes.items():
        if key.startswith("fin_"):
            body["financials"][key[4:]] = value
        elif value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


DROP = object()
BAD_EVIDENCE = [
    (ev(assessment_id="no spaces"), "body.assessment_id"),
    (ev(assessment_id=DROP), "body.assessment_id"),
    (ev(fin_current_assets="-1"), "body.financials.current_assets"),
    (ev(fin_revenue="1.23456"), "body.financials.revenue"),
    (ev(fin_equity="1e5"), "body.financials.equity"),
    (ev(fin_currency="eur"), "body.financials.currency"),
    (ev(fin_cash="1"), "body.financials.cash"),
    (ev(industry_risk="extreme"), "body.industry_risk"),
    (ev(years_in_business=2.5), "body.years_in_business"),
    (ev(external_score={"score": 101}), "body.external_score.score"),
    (ev(as_of="30/11/2026"), "body.as_of"),
    (ev(as_of="2999-01-01"), "body.as_of"),                       # in the future
    (ev(expected_monthly_purchases="-5"), "body.expected_monthly_purchases"),
    (ev(surprise=True), "body.surprise"),
]


@pytest.mark.parametrize(("body", "field"), BAD_EVIDENCE)
async def test_create_assessment_refuses_bad_evidence(aapi: Api, db, body, field) -> None:
    await account(aapi, "ACME")
    before = await snapshot(db)
    problem(await aapi.post(BASE, body, role="controller"), 422, field)
    assert await snapshot(db) == before


async def test_create_assessment_other_refusals(aapi: Api, db) -> None:
    await account(aapi, "ACME")
    before = await snapshot(db)
    assert problem(await aapi.post("/v1/customers/NOPE/assessments", EVIDENCE),
                   404)["code"] == "customer_not_found"
    problem(await aapi.post(BASE, EVIDENCE, role="order-entry"), 403)
    problem(await aapi.post(BASE, [EVIDENCE]), 422)
    r = await aapi.request("POST", BASE, content=b'{"assessment_id": ',
                           headers={"content-type": "application/json"})
    problem(r, 400)
    problem(await aapi.post("/v1/customers/bad%20id/assessments", EVIDENCE), 422)
    assert await snapshot(db) == before


async def test_reading_assessments_refusals(aapi: Api) -> None:
    await account(aapi, "ACME")
    assert problem(await aapi.get(f"{BASE}/NOPE"), 404)["code"] == "assessment_not_found"
    assert problem(await aapi.get("/v1/customers/NOPE/assessments"),
                   404)["code"] == "customer_not_found"
    problem(await aapi.get(BASE, params={"limit": 500}), 422)
    problem(await aapi.get(BASE, role="warehouse"), 403)


BAD_APPLY = [
    ({}, "body.reason"),
    ({"reason": ""}, "body.reason"),
    ({"reason": "x", "credit_limit": "-1"}, "body.credit_limit"),
    ({"reason": "x", "credit_limit": "1.00001"}, "body.credit_limit"),
    ({"reason": "x", "risk_class": "unrated"}, "body.risk_class"),
    ({"reason": "x", "risk_class": "a"}, "body.risk_class"),
    ({"reason": "x", "grade": "A"}, "body.grade"),
]


@pytest.mark.parametrize(("body", "field"), BAD_APPLY)
async def test_apply_refuses_bad_bodies(aapi: Api, db, body, field) -> None:
    await account(aapi, "ACME")
    assert (await aapi.post(BASE, EVIDENCE)).status_code == 201
    before = await snapshot(db)
    problem(await aapi.post(f"{BASE}/A-ACME-1/apply", body), 422, field)
    assert await snapshot(db) == before


async def test_apply_other_refusals(aapi: Api, db) -> None:
    await account(aapi, "ACME")
    await account(aapi, "OTHER")
    assert (await aapi.post(BASE, EVIDENCE)).status_code == 201
    before = await snapshot(db)
    ok = {"reason": "committee"}
    assert problem(await aapi.post(f"{BASE}/NOPE/apply", ok), 404)["code"] == \
        "assessment_not_found"
    # Another customer's assessment is not found under this one.
    assert problem(await aapi.post("/v1/customers/OTHER/assessments/A-ACME-1/apply", ok),
                   404)["code"] == "assessment_not_found"
    assert problem(await aapi.post("/v1/customers/NOPE/assessments/A-ACME-1/apply", ok),
                   404)["code"] == "customer_not_found"
    problem(await aapi.post(f"{BASE}/A-ACME-1/apply", ok, role="ledger"), 403)
    assert await snapshot(db) == before
