"""HTTP routes of credit accounts, exposure and the credit file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.customers import service
from app.customers.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ExposureOut,
    HistoryPage,
)
from app.deps import AnyRole, Controller, DbDep
from app.fields import ID_PATTERN
from app.http import DecimalRoute
from app.observe import count

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=DecimalRoute)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN, description="The ERP's customer id.")]


@router.put("/{customer_id}", response_model=AccountOut, status_code=201,
            responses={200: {"model": AccountOut, "description": "Replaced"}})
async def put_customer(customer_id: CustomerId, body: AccountIn, db: DbDep,
                       caller: Controller, request: Request, response: Response) -> AccountOut:
    """Create (201) or replace (200) a credit account. Receivables and orders are kept."""
    change = await service.put_account(db, customer_id, body, caller)
    count(request, change.decided)
    if not change.created:
        response.status_code = 200
    return change.account


@router.patch("/{customer_id}", response_model=AccountOut)
async def patch_customer(customer_id: CustomerId, body: AccountPatch, db: DbDep,
                         caller: Controller, request: Request) -> AccountOut:
    """Change some terms: limit, temporary limit, risk class, blocked, payment terms."""
    change = await service.patch_account(db, customer_id, body, caller)
    count(request, change.decided)
    return change.account


@router.get("/{customer_id}", response_model=AccountOut)
async def get_customer(customer_id: CustomerId, db: DbDep, _: Controller) -> AccountOut:
    """The credit account."""
    return await service.get_account(db, customer_id)


@router.get("/{customer_id}/exposure", response_model=ExposureOut)
async def get_exposure(customer_id: CustomerId, db: DbDep, _: AnyRole) -> ExposureOut:
    """Open receivables + approved open orders against the effective limit."""
    return await service.exposure(db, customer_id)


@router.get("/{customer_id}/history", response_model=HistoryPage)
async def get_history(
    customer_id: CustomerId, db: DbDep, _: Controller,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9A-Z]{26}$",
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HistoryPage:
    """The credit file: every decision, limit change, release and ledger event, newest first."""
    return await service.history(db, customer_id, cursor, limit)
