"""HTTP routes of a customer's securities."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from app.decimal_json import DecimalRoute
from app.deps import Controller, DbDep
from app.fields import ID_PATTERN
from app.observe import count
from app.securities import service
from app.securities.schemas import SecurityIn, SecurityOut

router = APIRouter(prefix="/v1/customers/{customer_id}/securities", tags=["securities"],
                   route_class=DecimalRoute)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN, description="The ERP's customer id.")]
SecurityId = Annotated[str, Path(pattern=ID_PATTERN, description="The caller's id.")]
_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such account (`customer_not_found`) or security "
                         "(`security_not_found`)"}}


@router.put("/{security_id}", response_model=SecurityOut, status_code=201,
            operation_id="put_security",
            responses={200: {"model": SecurityOut, "description": "Replaced"}, **_404})
async def put_security(customer_id: CustomerId, security_id: SecurityId, body: SecurityIn,
                       db: DbDep, caller: Controller, request: Request, response: Response
                       ) -> SecurityOut:
    """Create (201) or replace (200) a security; while valid it adds to the effective limit."""
    change = await service.put_security(db, customer_id, security_id, body, caller)
    count(request, change.decided)
    if not change.created:
        response.status_code = 200
    return change.security


@router.get("", response_model=list[SecurityOut], operation_id="list_securities",
            responses=_404)
async def list_securities(customer_id: CustomerId, db: DbDep, _: Controller
                          ) -> list[SecurityOut]:
    """The customer's securities, by id, each at today's rate."""
    return await service.list_securities(db, customer_id)


@router.get("/{security_id}", response_model=SecurityOut, operation_id="get_security",
            responses=_404)
async def get_security(customer_id: CustomerId, security_id: SecurityId, db: DbDep,
                       _: Controller) -> SecurityOut:
    """One security, at today's rate."""
    return await service.get_security(db, customer_id, security_id)


@router.delete("/{security_id}", status_code=204, response_class=Response,
               operation_id="delete_security", responses=_404)
async def delete_security(customer_id: CustomerId, security_id: SecurityId, db: DbDep,
                          caller: Controller) -> Response:
    """Remove a security: the effective limit loses it at once; reservations stay."""
    await service.delete_security(db, customer_id, security_id, caller)
    return Response(status_code=204)
