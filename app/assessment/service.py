"""The scorecard (read, replace, audit) and assessments (propose, list, read, apply)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.assessment import repository as repo
from app.assessment.schemas import (
    ApplyIn,
    ApplyOut,
    AssessmentIn,
    AssessmentOut,
    ScorecardIn,
    ScorecardOut,
)
from app.assessment.scorecard import (
    Assessment,
    Evidence,
    Scorecard,
    assess,
    terms_for,
    validate,
)
from app.auth.roles import Caller
from app.credit_file.entries import event_entry, recorded
from app.credit_file.repository import add_entries
from app.customers import repository as accounts
from app.customers.models import Account
from app.customers.schemas import AccountOut
from app.customers.service import emit_account_events, render_account
from app.db.engine import Database
from app.errors import Conflict, NotFound, Unprocessable
from app.events.outbox import emit
from app.events.types import EventType
from app.flows import auto_release
from app.ids import new_id
from app.metrics import Decided
from app.money import format_amount
from app.monitoring.alerts import Kind, grade_downgrade
from app.monitoring.service import evaluate, raise_alert
from app.receivables.behaviour_service import behaviour_of
from app.securities.repository import counted

log = logging.getLogger("creditgate.assessment")

ASSESSMENT_PROPOSED = "assessment_proposed"  # credit-file events
ASSESSMENT_APPLIED = "assessment_applied"
GRADE_DOWNGRADE = "GRADE_DOWNGRADE"
TERMS = ("credit_limit", "risk_class", "payment_terms_days", "review_due_on")


def invalid(field: str, message: str) -> Unprocessable:
    """A 422 shaped like a request validation error, naming the field."""
    return Unprocessable(f"invalid fields: {field}", code="validation_error",
                         extra={"errors": [{"field": field, "message": message}]})


# ---- the scorecard -----------------------------------------------------------------------

def card_of(document: dict[str, Any]) -> Scorecard:
    return ScorecardIn.model_validate(document).to_card()


def _render_scorecard(row: Any) -> ScorecardOut:
    return ScorecardOut.model_validate({**row["document"], "version": row["version"],
                                        "created_at": row["created_at"],
                                        "created_by": row["created_by"], "note": row["note"]})


async def _current(conn: AsyncConnection) -> Any:
    row = await repo.latest_scorecard(conn)
    if row is None:  # only if someone emptied the table by hand: migration 0008 seeds it
        raise Conflict("no scorecard is installed; PUT /v1/scorecard first",
                       code="scorecard_missing")
    return row


async def get_scorecard(db: Database) -> ScorecardOut:
    async with db.autocommit() as conn:
        return _render_scorecard(await _current(conn))


async def scorecard_history(db: Database, limit: int) -> list[ScorecardOut]:
    async with db.autocommit() as conn:
        return [_render_scorecard(r) for r in await repo.scorecard_history(conn, limit)]


async def put_scorecard(db: Database, body: ScorecardIn, caller: Caller) -> ScorecardOut:
    """Replace the scorecard: a new version; every earlier one is kept (the audit trail)."""
    problems = validate(body.to_card())
    if problems:
        fields = [{"field": f"body.{f}", "message": m} for f, m in problems]
        raise Unprocessable("invalid fields: " + ", ".join(sorted({f["field"] for f in fields})),
                            code="validation_error", extra={"errors": fields})
    now = clock.now()
    async with db.begin() as conn:
        await repo.lock_scorecard(conn)
        latest = await repo.latest_scorecard(conn)
        version = 1 if latest is None else latest["version"] + 1
        await repo.insert_scorecard(conn, version=version, document=body.document(), now=now,
                                    actor=caller.name, note=body.reason)
        return _render_scorecard(await repo.scorecard_version(conn, version))


# ---- assessments -------------------------------------------------------------------------

@dataclass
class Proposed:
    assessment: AssessmentOut
    replayed: bool


@dataclass
class Applied:
    result: ApplyOut
    replayed: bool
    decided: Decided


def render(row: Any) -> AssessmentOut:
    result = row["result"]
    applied = row["applied"]
    return AssessmentOut.model_validate({
        **result, "assessment_id": row["assessment_id"], "customer_id": row["customer_id"],
        "as_of": row["as_of"], "status": row["status"],
        "scorecard_version": row["scorecard_version"], "evidence": row["evidence"],
        "created_at": row["created_at"], "created_by": row["created_by"],
        "applied": applied["terms"] if applied else None, "applied_at": row["applied_at"],
        "applied_by": row["applied_by"], "superseded_at": row["superseded_at"]})


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format_amount(value)


def _result_doc(outcome: Assessment, account: Account, ledger: dict[str, Any]
                ) -> dict[str, Any]:
    return {
        "score": str(outcome.score), "grade": outcome.grade,
        "factors": [{"name": f.name, "value": None if f.value is None else str(f.value),
                     "points": f.points, "weight": f.weight} for f in outcome.factors],
        "missing": list(outcome.missing),
        "suggested_limit": str(outcome.suggested_limit),
        "limit_basis": [{"rule": b.rule, "base": str(b.base), "amount": str(b.amount),
                         "binding": b.binding} for b in outcome.limit_basis],
        "suggested_terms_days": outcome.suggested_terms_days,
        "review_due_on": outcome.review_due_on.isoformat(),
        "current": {"credit_limit": format_amount(account.credit_limit),
                    "risk_class": account.risk_class,
                    "payment_terms_days": account.payment_terms_days},
        "ledger": ledger,
    }


async def _ledger(conn: AsyncConnection, account: Account, today: dt.date
                  ) -> tuple[Decimal | None, Decimal | None]:
    """days_beyond_terms and invoiced_365d from the payment-behaviour aggregates, if any."""
    behaviour = await behaviour_of(conn, account.customer_id, today)
    if behaviour is None:
        return None, None
    return behaviour.days_beyond_terms, behaviour.invoiced_365d


def _evidence(body: AssessmentIn, payment_index: int | None, days_beyond: Decimal | None,
              invoiced: Decimal | None) -> Evidence:
    financials = body.financials.figures() if body.financials else Evidence().financials
    return Evidence(
        financials=financials,
        external_score=body.external_score.score if body.external_score else None,
        years_in_business=body.years_in_business, industry_risk=body.industry_risk,
        expected_monthly_purchases=body.expected_monthly_purchases,
        payment_index=payment_index, days_beyond_terms=days_beyond, invoiced_365d=invoiced)


def _replay_or_conflict(row: Any, customer_id: str, evidence: dict[str, Any]) -> Proposed:
    if row["customer_id"] != customer_id or row["evidence"] != evidence:
        raise Conflict(f"assessment {row['assessment_id']} exists with other evidence"
                       + ("" if row["customer_id"] == customer_id else " (another customer)"),
                       code="conflict")
    return Proposed(render(row), replayed=True)


async def propose(db: Database, customer_id: str, body: AssessmentIn, caller: Caller
                  ) -> Proposed:
    try:
        return await _propose(db, customer_id, body, caller)
    except IntegrityError:
        # The same assessment_id was proposed concurrently (for another customer: the same
        # customer's proposals serialise on its account row). Answer as its replay would.
        async with db.autocommit() as conn:
            row = await repo.get_assessment(conn, body.assessment_id)
        if row is None:
            raise
        return _replay_or_conflict(row, customer_id, body.evidence())


async def _propose(db: Database, customer_id: str, body: AssessmentIn, caller: Caller
                   ) -> Proposed:
    today, now = clock.today(), clock.now()
    evidence = body.evidence()
    async with db.begin() as conn:
        account = await accounts.get_account(conn, customer_id, lock=True)
        if account is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        existing = await repo.get_assessment(conn, body.assessment_id)
        if existing is not None:
            return _replay_or_conflict(existing, customer_id, evidence)
        as_of = body.as_of or today
        if as_of > today:
            raise invalid("body.as_of", f"must not be in the future (today is {today})")
        currency = body.financials.currency if body.financials else None
        if currency is not None and currency != account.currency:
            raise Unprocessable(
                f"the financials are in {currency}, the account in {account.currency}, and "
                f"there is no {currency}/{account.currency} rate for {as_of}",
                code="fx_rate_missing")
        card_row = await _current(conn)
        days_beyond, invoiced = await _ledger(conn, account, today)
        outcome = assess(card_of(card_row["document"]),
                         _evidence(body, account.payment_index, days_beyond, invoiced), as_of)
        ledger = {"payment_index": account.payment_index,
                  "days_beyond_terms": None if days_beyond is None else str(days_beyond),
                  "invoiced_365d": _money(invoiced)}
        result = _result_doc(outcome, account, ledger)
        await repo.insert_assessment(conn, {
            "assessment_id": body.assessment_id, "customer_id": customer_id, "as_of": as_of,
            "status": "proposed", "scorecard_version": card_row["version"],
            "evidence": evidence, "result": result, "created_at": now,
            "created_by": caller.name})
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=ASSESSMENT_PROPOSED, actor=caller.name,
            customer_id=customer_id, note=body.note, details={
                "assessment_id": body.assessment_id, "as_of": as_of.isoformat(),
                "scorecard_version": card_row["version"], "score": result["score"],
                "grade": outcome.grade, "missing": result["missing"],
                "suggested_limit": format_amount(outcome.suggested_limit),
                "suggested_terms_days": outcome.suggested_terms_days,
                "review_due_on": result["review_due_on"]})])
        row = await repo.get_assessment(conn, body.assessment_id)
    return Proposed(render(row), replayed=False)


async def list_assessments(db: Database, customer_id: str, limit: int) -> list[AssessmentOut]:
    async with db.autocommit() as conn:
        if await accounts.get_account(conn, customer_id) is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        return [render(r) for r in await repo.list_assessments(conn, customer_id, limit)]


async def get_assessment(db: Database, customer_id: str, assessment_id: str) -> AssessmentOut:
    async with db.autocommit() as conn:
        row = await repo.get_assessment(conn, assessment_id)
    if row is None or row["customer_id"] != customer_id:
        raise NotFound(f"no assessment {assessment_id} of {customer_id}",
                       code="assessment_not_found")
    return render(row)




async def apply(db: Database, customer_id: str, assessment_id: str, body: ApplyIn,
                caller: Caller) -> Applied:
    """Set limit, class, terms and review date from the assessment (or the overrides)."""
    today, now = clock.today(), clock.now()
    request = body.document()
    async with db.begin() as conn:
        account = await accounts.get_account(conn, customer_id, lock=True)
        if account is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        row = await repo.get_assessment(conn, assessment_id, lock=True)
        if row is None or row["customer_id"] != customer_id:
            raise NotFound(f"no assessment {assessment_id} of {customer_id}",
                           code="assessment_not_found")
        if row["status"] == "superseded":
            raise Conflict(f"assessment {assessment_id} was superseded by a later one; "
                           "propose a new assessment", code="assessment_superseded")
        if row["status"] == "applied":
            if row["apply_request"] != request:
                raise Conflict(f"assessment {assessment_id} was already applied with another "
                               "body", code="conflict")
            replay = ApplyOut(account=AccountOut.model_validate(row["applied"]["account"]),
                              assessment=render(row))
            return Applied(replay, replayed=True, decided=[])
        result = row["result"]
        card = card_of((await repo.scorecard_version(conn, row["scorecard_version"]))
                       ["document"])
        risk_class = body.risk_class or result["grade"]
        limit = (body.credit_limit if body.credit_limit is not None
                 else Decimal(result["suggested_limit"]))
        terms_days, review_due_on = terms_for(card, risk_class, row["as_of"])
        new = {"credit_limit": limit, "risk_class": risk_class,
               "payment_terms_days": terms_days, "review_due_on": review_due_on}
        changes = {k: {"old": recorded(getattr(account, k)), "new": recorded(v)}
                   for k, v in new.items()}
        overrides = {k: recorded(getattr(body, k)) for k in ("credit_limit", "risk_class")
                     if getattr(body, k) is not None}
        await accounts.update_terms(conn, customer_id, new, now)
        superseded = await repo.supersede_applied(conn, customer_id, now)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=ASSESSMENT_APPLIED, actor=caller.name,
            customer_id=customer_id, note=body.reason, details={
                "assessment_id": assessment_id, "grade": result["grade"],
                "score": result["score"], "suggested_limit": result["suggested_limit"],
                "overrides": overrides, "superseded": superseded, "changes": changes})])
        downgrade = grade_downgrade(account.risk_class, risk_class)
        if downgrade is not None:
            await raise_alert(conn, customer_id, Kind.GRADE_DOWNGRADE,
                              {**downgrade, "assessment_id": assessment_id}, now=now)
        decided = await auto_release(conn, customer_id, today=today, now=now,
                                     ttl_days=db.settings.reservation_ttl_days)
        # An upgrade resolves an open downgrade; the new review date may be due already.
        await evaluate(conn, customer_id, today=today, now=now)
        after = await accounts.get_account(conn, customer_id)
        assert after is not None
        account_out = render_account(after, today,
                                     await counted(conn, customer_id, today))
        terms = {**{k: recorded(v) for k, v in new.items()}, "overrides": overrides,
                 "reason": body.reason}
        await repo.mark_applied(conn, assessment_id, {
            "applied_at": now, "applied_by": caller.name, "apply_request": request,
            "apply_reason": body.reason, "override_credit_limit": body.credit_limit,
            "override_risk_class": body.risk_class,
            "applied": {"terms": terms, "account": account_out.model_dump(mode="json")}})
        row = await repo.get_assessment(conn, assessment_id)
        applied = ApplyOut(account=account_out, assessment=render(row))
        await emit_account_events(conn, account, after, account_out, now=now)
        await emit(conn, EventType.ASSESSMENT_APPLIED, applied, customer_id=customer_id,
                   now=now)
    return Applied(applied, False, decided)
