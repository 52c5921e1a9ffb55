"""HTTP routes of credit checks and per-class policies."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.credit import policies
from app.credit.policy import RISK_CLASSES
from app.credit.schemas import CreditCheckIn, DecisionOut
from app.credit.service import check_credit
from app.deps import Controller, DbDep, OrderEntry
from app.errors import within
from app.http import REPLAYED_HEADER, DecimalRoute, time_left
from app.metrics import DECISION_SECONDS
from app.observe import count

router = APIRouter(tags=["credit"], route_class=DecimalRoute)
RiskClass = Annotated[str, Path(description=f"One of {', '.join(RISK_CLASSES)}")]


@router.post("/v1/credit-checks", response_model=DecisionOut, status_code=201, responses={
    200: {"description": "A dry run, or the replay of an earlier identical check "
                         "(header Idempotent-Replayed: true)"}})
async def post_credit_check(body: CreditCheckIn, db: DbDep, caller: OrderEntry,
                            request: Request) -> Response:
    """Can this order ship on credit? Approve reserves the amount; dry runs record nothing."""
    started = time.perf_counter()
    result = await within(time_left(request), check_credit(db, body, caller))
    status, headers = 201, {}
    if result.replayed:
        status, headers = 200, {REPLAYED_HEADER: "true"}
    elif body.dry_run:
        status = 200
    else:
        DECISION_SECONDS.observe(time.perf_counter() - started)
        count(request, [(result.decision, result.channel)])
    request.state.decision = result.decision
    # Already a validated model: serialised once, directly, rather than validated again.
    return Response(result.decision.model_dump_json(), status, headers,
                    media_type="application/json")


@router.get("/v1/policies/{risk_class}", response_model=policies.PolicyOut)
async def get_policy(risk_class: RiskClass, db: DbDep, _: Controller) -> policies.PolicyOut:
    """The decision parameters of a risk class."""
    return await policies.get_policy(db, risk_class)


@router.get("/v1/policies/{risk_class}/history", response_model=list[policies.PolicyChangeOut])
async def get_policy_history(risk_class: RiskClass, db: DbDep, _: Controller,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             ) -> list[policies.PolicyChangeOut]:
    """The audit trail of a class's parameters, newest first."""
    return await policies.policy_history(db, risk_class, limit)


@router.put("/v1/policies/{risk_class}", response_model=policies.PolicyOut)
async def put_policy(risk_class: RiskClass, body: policies.PolicyIn, db: DbDep,
                     caller: Controller) -> policies.PolicyOut:
    """Replace the decision parameters of a risk class (audited)."""
    return await policies.put_policy(db, risk_class, body, caller)
