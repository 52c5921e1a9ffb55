"""Assessment: enter the evidence, see the score build up, apply it (the assessment
service's propose and apply: the same validation, the same credit-file entries)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import Request, Response

from app import clock
from app.assessment import service as assessments
from app.assessment.schemas import ApplyIn, AssessmentIn, AssessmentOut
from app.console import charts
from app.console.forms import Errors, Form, app_error, validate, whole
from app.console.web import action, db_of, need_session, redirect, render, router
from app.customers import service as customers
from app.errors import AppError
from app.observe import count

FIGURES = ("current_assets", "current_liabilities", "inventory", "total_assets",
           "total_liabilities", "equity", "intangible_assets", "revenue", "net_income",
           "operating_income", "interest_expense")
GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")
# The form's flat names for AssessmentIn's nested fields.
EVIDENCE_FIELDS = {
    "assessment_id": "assessment_id", "as_of": "as_of", "years_in_business": "years_in_business",
    "industry_risk": "industry_risk", "note": "note",
    "expected_monthly_purchases": "expected_monthly_purchases",
    "financials.currency": "currency", "financials.period_end": "period_end",
    **{f"financials.{f}": f for f in FIGURES},
    "external_score.score": "external_score", "external_score.provider": "provider",
    "external_score.as_of": "external_as_of", "external_score": "external_score",
    "financials": "",
}


def _evidence_of(form: Form) -> dict[str, Any]:
    """The form as an AssessmentIn body: blank fields are absent."""
    data: dict[str, Any] = {"assessment_id": form.get("assessment_id").strip()}
    for name in ("as_of", "industry_risk", "expected_monthly_purchases", "note"):
        if form.text(name) is not None:
            data[name] = form.text(name)
    if form.text("years_in_business") is not None:
        data["years_in_business"] = whole(form.text("years_in_business"))
    financials = {f: form.text(f) for f in (*FIGURES, "currency", "period_end")
                  if form.text(f) is not None}
    if financials:
        data["financials"] = financials
    if form.text("external_score") is not None or form.text("provider") is not None:
        data["external_score"] = {k: v for k, v in (
            ("score", form.text("external_score") or ""), ("provider", form.text("provider")),
            ("as_of", form.text("external_as_of"))) if v is not None}
    return data


async def _form_page(request: Request, customer_id: str, *, form: Form | None = None,
                     errors: Errors | None = None, status: int = 200) -> Response:
    db = db_of(request)
    account = await customers.get_account(db, customer_id)
    earlier = await assessments.list_assessments(db, customer_id, 20)
    today = clock.today()
    shown = form.as_dict() if form is not None else {
        "assessment_id": f"A-{today.isoformat()}-{customer_id}"[:64], "as_of": today.isoformat(),
        "currency": account.currency}
    return render(request, "assess.html", status=status, title=f"Assess {account.name}",
                  account=account, shown=shown, errors=errors or Errors(), figures=FIGURES,
                  earlier=earlier)


@router.get("/customers/{customer_id}/assess")
async def assess_form(request: Request, customer_id: str) -> Response:
    await need_session(request)
    return await _form_page(request, customer_id)


@router.post("/customers/{customer_id}/assess")
async def propose(request: Request, customer_id: str) -> Response:
    session, form = await action(request)
    errors = Errors()
    body = validate(AssessmentIn, _evidence_of(form), errors, EVIDENCE_FIELDS)
    if body is None:
        return await _form_page(request, customer_id, form=form, errors=errors, status=422)
    try:
        done = await assessments.propose(db_of(request), customer_id, body, session.caller)
    except AppError as exc:
        app_error(exc, errors, EVIDENCE_FIELDS)
        return await _form_page(request, customer_id, form=form, errors=errors,
                                status=exc.status)
    return redirect(f"/console/customers/{customer_id}/assess/{done.assessment.assessment_id}",
                    request)


def _build_up(a: AssessmentOut) -> tuple[Any, list[tuple[str, Decimal]]]:
    weight = sum(f.weight for f in a.factors) or 1
    shares = [(f.name, Decimal(f.weight * f.points) / weight) for f in a.factors]
    chart = charts.score_build_up([(f.name, f.weight, f.points) for f in a.factors], a.score)
    return chart, shares


async def _result_page(request: Request, customer_id: str, assessment_id: str, *,
                       errors: Errors | None = None, status: int = 200,
                       form: Form | None = None, notice: str | None = None) -> Response:
    db = db_of(request)
    account = await customers.get_account(db, customer_id)
    found = await assessments.get_assessment(db, customer_id, assessment_id)
    chart, shares = _build_up(found)
    return render(request, "assessment.html", status=status,
                  title=f"Assessment {assessment_id}", account=account, a=found, chart=chart,
                  shares=dict(shares), errors=errors or Errors(), grades=GRADES,
                  shown=form.as_dict() if form is not None else {}, notice=notice)


@router.get("/customers/{customer_id}/assess/{assessment_id}")
async def assessment(request: Request, customer_id: str, assessment_id: str) -> Response:
    await need_session(request)
    return await _result_page(request, customer_id, assessment_id)


@router.post("/customers/{customer_id}/assess/{assessment_id}/apply")
async def apply(request: Request, customer_id: str, assessment_id: str) -> Response:
    """POST .../assessments/{id}/apply's service: limit, class, terms and review date."""
    session, form = await action(request)
    errors = Errors()
    data: dict[str, Any] = {"reason": form.get("reason").strip()}
    for name in ("credit_limit", "risk_class"):
        if form.text(name) is not None:
            data[name] = form.text(name)
    body = validate(ApplyIn, data, errors)
    if body is None:
        return await _result_page(request, customer_id, assessment_id, errors=errors,
                                  status=422, form=form)
    try:
        done = await assessments.apply(db_of(request), customer_id, assessment_id, body,
                                       session.caller)
    except AppError as exc:
        app_error(exc, errors)
        return await _result_page(request, customer_id, assessment_id, errors=errors,
                                  status=exc.status, form=form)
    count(request, done.decided)
    account = done.result.account
    return await _result_page(
        request, customer_id, assessment_id,
        notice=f"Applied: limit {charts.money(account.credit_limit, account.currency)}, class "
               f"{account.risk_class}, {account.payment_terms_days} days' terms, review due "
               f"{account.review_due_on}.")
