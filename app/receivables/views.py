"""HTTP routes of the ledger: invoices, payments, open-item snapshots."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import text

from app import clock
from app.decimal_json import DecimalRoute
from app.deps import AnyRole, DbDep, Ledger
from app.fields import ID_PATTERN
from app.observe import count
from app.receivables import service
from app.receivables.behaviour_service import behaviour_of
from app.receivables.schemas import (
    InvoiceIn,
    InvoiceOut,
    OpenItemsIn,
    PaymentBehaviourOut,
    PaymentIn,
    PaymentOut,
    SnapshotOut,
)
from app.replays import mark_replayed

router = APIRouter(tags=["receivables"], route_class=DecimalRoute)
REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "Replay of an earlier identical request "
                         "(header Idempotent-Replayed: true)"}}


def _answer(posted: service.Posted, request: Request, response: Response) -> Any:
    """A ledger posting's answer: its decisions counted, a replay marked as one."""
    count(request, posted.decided)
    mark_replayed(response, posted.replayed)
    return posted.body


@router.post("/v1/invoices", response_model=InvoiceOut, status_code=201, responses=REPLAY,
             operation_id="create_invoice")
async def post_invoice(body: InvoiceIn, db: DbDep, caller: Ledger, request: Request,
                       response: Response) -> Any:
    """Record an invoice. Naming `order_id` moves that order's reservation into receivables."""
    return _answer(await service.post_invoice(db, body, caller), request, response)


@router.post("/v1/payments", response_model=PaymentOut, status_code=201, responses=REPLAY,
             operation_id="create_payment")
async def post_payment(body: PaymentIn, db: DbDep, caller: Ledger, request: Request,
                       response: Response) -> Any:
    """Record a payment: to its invoice, or oldest due first; any excess is unapplied credit."""
    return _answer(await service.post_payment(db, body, caller), request, response)


@router.put("/v1/customers/{customer_id}/open-items", response_model=SnapshotOut,
            operation_id="put_open_items")
async def put_open_items(
    customer_id: Annotated[str, Path(pattern=ID_PATTERN)], body: OpenItemsIn, db: DbDep,
    caller: Ledger, request: Request,
) -> SnapshotOut:
    """Replace all open receivables (credit items included) with the ERP's snapshot."""
    async with db.begin() as conn:
        result, decided = await service.replace_open_items(
            conn, customer_id, body.items, caller, today=clock.today(), now=clock.now(),
            ttl_days=db.settings.reservation_ttl_days)
    count(request, decided)
    return result


@router.get("/v1/customers/{customer_id}/payment-behaviour", response_model=PaymentBehaviourOut,
            operation_id="get_payment_behaviour")
async def get_payment_behaviour(customer_id: Annotated[str, Path(pattern=ID_PATTERN)],
                                db: DbDep, _: AnyRole) -> PaymentBehaviourOut:
    """Payment behaviour from our own ledger, as of today (DESIGN 2.2)."""
    async with db.begin() as conn:
        # One snapshot for the three reads, so the figures describe one moment.
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        found = await behaviour_of(conn, customer_id, clock.today())
    return PaymentBehaviourOut(**asdict(found))
