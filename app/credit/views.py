"""HTTP routes of credit checks and per-class policies."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.credit import policies
from app.credit.policy import RISK_CLASSES
from app.credit.schemas import CreditCheckIn, DecisionOut
from app.credit.service import check_credit
from app.deps import Controller, DbDep, OrderEntry
from app.http import DecimalRoute, mark_replayed
from app.metrics import DECISION_SECONDS
from app.observe import count

router = APIRouter(tags=["credit"], route_class=DecimalRoute)
RiskClass = Annotated[str, Path(description=f"One of {', '.join(RISK_CLASSES)}")]


@router.post("/v1/credit-checks", response_model=DecisionOut, status_code=201, responses={
    200: {"description": "A dry run, or the replay of an earlier identical check "
                         "(header Idempotent-Replayed: true)"}})
async def post_credit_check(body: CreditCheckIn, db: DbDep, caller: OrderEntry,
                            request: Request, response: Response) -> DecisionOut:
    """Can this order ship on credit? Approve reserves the amount; dry runs record nothing."""
    started = time.perf_counter()
    result = await check_credit(db, body, caller)
    if result.replayed:
        mark_replayed(response, True)
    elif body.dry_run:
        response.status_code = 200
    else:
        DECISION_SECONDS.observe(time.perf_counter() - started)
        count(request, [(result.decision, result.channel)])
    request.state.decision = result.decision
    return result.decision


@router.get("/v1/policies/{risk_class}", response_model=policies.PolicyOut)
async def get_policy(risk_class: RiskClass, db: DbDep, _: Controller) -> policies.PolicyOut:
    """The decision parameters of a risk class."""
    return await policies.get_policy(db, risk_class)


@router.put("/v1/policies/{risk_class}", response_model=policies.PolicyOut)
async def put_policy(risk_class: RiskClass, body: policies.PolicyIn, db: DbDep,
                     caller: Controller) -> policies.PolicyOut:
    """Replace the decision parameters of a risk class (audited)."""
    return await policies.put_policy(db, risk_class, body, caller)
