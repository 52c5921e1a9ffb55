"""HTTP routes of the scorecard and of assessments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from app.assessment import service
from app.assessment.schemas import (
    ApplyIn,
    ApplyOut,
    AssessmentIn,
    AssessmentOut,
    ScorecardIn,
    ScorecardOut,
)
from app.decimal_json import DecimalRoute
from app.deps import Admin, Controller, DbDep
from app.fields import ID_PATTERN
from app.metrics import ASSESSMENTS
from app.observe import count
from app.replays import mark_replayed

router = APIRouter(tags=["assessment"], route_class=DecimalRoute)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN, description="The ERP's customer id.")]
AssessmentId = Annotated[str, Path(pattern=ID_PATTERN, description="The caller's id.")]
Limit = Annotated[int, Query(ge=1, le=200)]
REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {"description": "Replayed (header Idempotent-Replayed: true)"}}


@router.get("/v1/scorecard", response_model=ScorecardOut, operation_id="get_scorecard")
async def get_scorecard(db: DbDep, _: Controller) -> ScorecardOut:
    """The scorecard in force (its latest version)."""
    return await service.get_scorecard(db)


@router.get("/v1/scorecard/history", response_model=list[ScorecardOut],
            operation_id="get_scorecard_history")
async def get_scorecard_history(db: DbDep, _: Controller, limit: Limit = 50
                                ) -> list[ScorecardOut]:
    """Every version of the scorecard, newest first: who replaced it, when and why."""
    return await service.scorecard_history(db, limit)


@router.put("/v1/scorecard", response_model=ScorecardOut, operation_id="put_scorecard")
async def put_scorecard(body: ScorecardIn, db: DbDep, caller: Admin) -> ScorecardOut:
    """Replace the scorecard (admin only): a new version; earlier ones are kept."""
    return await service.put_scorecard(db, body, caller)


@router.post("/v1/customers/{customer_id}/assessments", response_model=AssessmentOut,
             status_code=201, operation_id="create_assessment", responses=REPLAYED)
async def create_assessment(customer_id: CustomerId, body: AssessmentIn, db: DbDep,
                            caller: Controller, response: Response) -> AssessmentOut:
    """Score evidence: grade, suggested limit, terms and review date (proposed, not applied)."""
    proposed = await service.propose(db, customer_id, body, caller)
    mark_replayed(response, proposed.replayed)
    if not proposed.replayed:
        ASSESSMENTS.labels(proposed.assessment.grade).inc()
    return proposed.assessment


@router.get("/v1/customers/{customer_id}/assessments", response_model=list[AssessmentOut],
            operation_id="list_assessments")
async def list_assessments(customer_id: CustomerId, db: DbDep, _: Controller,
                           limit: Limit = 50) -> list[AssessmentOut]:
    """The customer's assessments, newest first."""
    return await service.list_assessments(db, customer_id, limit)


@router.get("/v1/customers/{customer_id}/assessments/{assessment_id}",
            response_model=AssessmentOut, operation_id="get_assessment")
async def get_assessment(customer_id: CustomerId, assessment_id: AssessmentId, db: DbDep,
                         _: Controller) -> AssessmentOut:
    """One assessment with its score build-up."""
    return await service.get_assessment(db, customer_id, assessment_id)


@router.post("/v1/customers/{customer_id}/assessments/{assessment_id}/apply",
             response_model=ApplyOut, operation_id="apply_assessment")
async def apply_assessment(customer_id: CustomerId, assessment_id: AssessmentId, body: ApplyIn,
                           db: DbDep, caller: Controller, request: Request, response: Response
                           ) -> ApplyOut:
    """Set limit, class, terms and review date from the assessment (or overrides)."""
    applied = await service.apply(db, customer_id, assessment_id, body, caller)
    count(request, applied.decided)
    if applied.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return applied.result
