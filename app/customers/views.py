"""HTTP routes of credit accounts, exposure and the credit file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.customers import service
from app.customers.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ExposureOut,
)
from app.decimal_json import DecimalRoute
from app.deps import AnyRole, CacheDep, Controller, DbDep
from app.fields import ID_PATTERN
from app.observe import count

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=DecimalRoute)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN, description="The ERP's customer id.")]


@router.put("/{customer_id}", response_model=AccountOut, status_code=201,
            operation_id="put_customer",
            responses={200: {"model": AccountOut, "description": "Replaced"}})
async def put_customer(customer_id: CustomerId, body: AccountIn, db: DbDep,
                       caller: Controller, request: Request, response: Response) -> AccountOut:
    """Create (201) or replace (200) a credit account. Receivables and orders are kept."""
    change = await service.put_account(db, customer_id, body, caller)
    count(request, change.decided)
    if not change.created:
        response.status_code = 200
    return change.account


@router.patch("/{customer_id}", response_model=AccountOut, operation_id="patch_customer")
async def patch_customer(customer_id: CustomerId, body: AccountPatch, db: DbDep,
                         caller: Controller, request: Request) -> AccountOut:
    """Change some terms: limit, temporary limit, risk class, blocked, payment terms."""
    change = await service.patch_account(db, customer_id, body, caller)
    count(request, change.decided)
    return change.account


@router.get("/{customer_id}", response_model=AccountOut, operation_id="get_customer")
async def get_customer(customer_id: CustomerId, db: DbDep, _: Controller) -> AccountOut:
    """The credit account."""
    return await service.get_account(db, customer_id)


@router.get("/{customer_id}/exposure", response_model=ExposureOut, operation_id="get_exposure")
async def get_exposure(customer_id: CustomerId, db: DbDep, cache: CacheDep, _: AnyRole
                       ) -> ExposureOut:
    """Open receivables + approved open orders against the effective limit."""
    return await service.exposure(db, cache, customer_id)
