"""HTTP routes of the ledger: invoices, payments, open-item snapshots."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from app.deps import DbDep, Ledger
from app.fields import ID_PATTERN
from app.http import DecimalRoute, mark_replayed
from app.observe import count
from app.receivables import service
from app.receivables.schemas import (
    InvoiceIn,
    InvoiceOut,
    OpenItemsIn,
    PaymentIn,
    PaymentOut,
    SnapshotOut,
)

router = APIRouter(tags=["receivables"], route_class=DecimalRoute)
REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "Replay of an earlier identical request "
                         "(header Idempotent-Replayed: true)"}}


@router.post("/v1/invoices", response_model=InvoiceOut, status_code=201, responses=REPLAY)
async def post_invoice(body: InvoiceIn, db: DbDep, caller: Ledger, request: Request,
                       response: Response) -> Any:
    """Record an invoice. Naming `order_id` moves that order's reservation into receivables."""
    posted = await service.post_invoice(db, body, caller)
    count(request, posted.decided)
    mark_replayed(response, posted.replayed)
    return posted.body


@router.post("/v1/payments", response_model=PaymentOut, status_code=201, responses=REPLAY)
async def post_payment(body: PaymentIn, db: DbDep, caller: Ledger, request: Request,
                       response: Response) -> Any:
    """Record a payment: to its invoice, or oldest due first; any excess is unapplied credit."""
    posted = await service.post_payment(db, body, caller)
    count(request, posted.decided)
    mark_replayed(response, posted.replayed)
    return posted.body


@router.put("/v1/customers/{customer_id}/open-items", response_model=SnapshotOut)
async def put_open_items(
    customer_id: Annotated[str, Path(pattern=ID_PATTERN)], body: OpenItemsIn, db: DbDep,
    caller: Ledger, request: Request,
) -> SnapshotOut:
    """Replace all open receivables (credit items included) with the ERP's snapshot."""
    result, decided = await service.replace_open_items(db, customer_id, body.items, caller)
    count(request, decided)
    return result
