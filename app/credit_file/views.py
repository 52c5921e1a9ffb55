"""HTTP route of the credit file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.credit_file import service
from app.credit_file.schemas import HistoryPage
from app.customers.views import CustomerId
from app.decimal_json import DecimalRoute
from app.deps import Controller, DbDep

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=DecimalRoute)


@router.get("/{customer_id}/history", response_model=HistoryPage, operation_id="get_history")
async def get_history(
    customer_id: CustomerId, db: DbDep, _: Controller,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9A-Z]{26}$",
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HistoryPage:
    """The credit file: every decision, limit change, release and ledger event, newest first."""
    return await service.history(db, customer_id, cursor, limit)
