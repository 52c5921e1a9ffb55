"""HTTP route of the credit check."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from app.credit.schemas import CreditCheckIn, DecisionOut
from app.credit.service import CheckResult, check_credit
from app.deadline import time_left, within
from app.decimal_json import DecimalRoute
from app.deps import CacheDep, DbDep, OrderEntry
from app.metrics import DECISION_SECONDS, Channels, count_decisions
from app.replays import REPLAYED_HEADER

router = APIRouter(tags=["credit"], route_class=DecimalRoute)


@router.post("/v1/credit-checks", response_model=DecisionOut, status_code=201,
             operation_id="create_credit_check", responses={
    200: {"description": "A dry run, or the replay of an earlier identical check "
                         "(header Idempotent-Replayed: true)"}})
async def post_credit_check(body: CreditCheckIn, db: DbDep, cache: CacheDep,
                            caller: OrderEntry, request: Request) -> Response:
    """Can this order ship on credit? Approve reserves the amount; dry runs record nothing."""
    started = time.perf_counter()
    result = await within(time_left(request), check_credit(db, cache, body, caller))
    request.state.decision = result.decision
    return decision_response(result, body, started, request.app.state.channels)


def decision_response(result: CheckResult, req: CreditCheckIn, started: float,
                      channels: Channels) -> Response:
    """The answer to a check (also app/credit/fast_path.py's): 201 for a decision taken now,
    200 for a dry run or a replay; a decision taken now is timed and counted."""
    status, headers = 201, {}
    if result.replayed:
        status, headers = 200, {REPLAYED_HEADER: "true"}
    elif req.dry_run:
        status = 200
    else:
        DECISION_SECONDS.observe(time.perf_counter() - started)
        count_decisions(result.decided, channels)
    # Already a validated model: serialised once, directly, rather than validated again.
    return Response(result.decision.model_dump_json(), status, headers,
                    media_type="application/json")
