"""HTTP routes of the per-class decision parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.credit.policy import RISK_CLASSES
from app.decimal_json import DecimalRoute
from app.deps import Controller, DbDep
from app.policies import service as policies
from app.policies.schemas import (
    PolicyChangeOut,
    PolicyIn,
    PolicyOut,
    SimulateIn,
    SimulationOut,
)
from app.policies.service import params_of
from app.policies.simulate import simulate

router = APIRouter(tags=["policies"], route_class=DecimalRoute)
RiskClass = Annotated[str, Path(description=f"One of {', '.join(RISK_CLASSES)}")]


@router.get("/v1/policies/{risk_class}", response_model=PolicyOut,
            operation_id="get_policy")
async def get_policy(risk_class: RiskClass, db: DbDep, _: Controller) -> PolicyOut:
    """The decision parameters of a risk class."""
    return await policies.get_policy(db, risk_class)


@router.get("/v1/policies/{risk_class}/history", response_model=list[PolicyChangeOut],
            operation_id="get_policy_history")
async def get_policy_history(risk_class: RiskClass, db: DbDep, _: Controller,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             ) -> list[PolicyChangeOut]:
    """The audit trail of a class's parameters, newest first."""
    return await policies.policy_history(db, risk_class, limit)


@router.put("/v1/policies/{risk_class}", response_model=PolicyOut,
            operation_id="put_policy")
async def put_policy(risk_class: RiskClass, body: PolicyIn, db: DbDep,
                     caller: Controller) -> PolicyOut:
    """Replace the decision parameters of a risk class (audited)."""
    return await policies.put_policy(db, risk_class, body, caller)


@router.post("/v1/policies/{risk_class}/simulate", response_model=SimulationOut,
             operation_id="simulate_policy")
async def simulate_policy(risk_class: RiskClass, body: SimulateIn, db: DbDep, _: Controller
                          ) -> SimulationOut:
    """Re-decide the class's entry credit checks of a window under proposed parameters.
    Changes nothing."""
    policies.known_class(risk_class)
    async with db.autocommit() as conn:
        result = await simulate(conn, risk_class, params_of(body.policy), body.from_, body.to)
    return SimulationOut.model_validate(result, from_attributes=True)
