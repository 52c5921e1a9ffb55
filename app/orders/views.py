"""HTTP routes of the order lifecycle and the hold queue."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.credit.schemas import DecisionOut
from app.deadline import time_left, within
from app.decimal_json import DecimalRoute
from app.deps import Controller, DbDep, OrderEntry, OrderReader, Warehouse
from app.fields import ID_PATTERN
from app.metrics import DECISION_SECONDS
from app.observe import count
from app.orders import service
from app.orders.render import render_order
from app.orders.repository import list_holds
from app.orders.schemas import AmendIn, AmendOut, CancelIn, HoldsPage, OrderOut, ReasonIn
from app.replays import mark_replayed

router = APIRouter(tags=["orders"], route_class=DecimalRoute)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_MICROS = 253_402_300_799_000_000  # 9999-12-31: any well-formed cursor is a position
HOLDS_CURSOR = r"^[0-9]{1,18}~[A-Za-z0-9._:-]{1,64}$"
OrderId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get("/v1/orders/{order_id}", response_model=OrderOut, operation_id="get_order")
async def get_order(order_id: OrderId, db: DbDep, _: OrderReader) -> OrderOut:
    """The order, its status, what it reserves and every decision about it."""
    return await service.read_order(db, order_id)


@router.patch("/v1/orders/{order_id}", response_model=AmendOut, operation_id="amend_order")
async def amend_order(order_id: OrderId, body: AmendIn, db: DbDep, caller: OrderEntry,
                      request: Request) -> AmendOut:
    """Change an approved order's amount. An increase that is not approved changes nothing."""
    change = await within(time_left(request), service.amend(db, order_id, body.amount, caller))
    count(request, change.decided)
    return AmendOut(order=change.order, decision=change.decision)


@router.post("/v1/orders/{order_id}/dispatch-check", response_model=DecisionOut,
             operation_id="dispatch_check",
             responses={200: {"description": "The decision; approve means shipped."}})
async def dispatch_check(order_id: OrderId, db: DbDep, caller: Warehouse, request: Request,
                         response: Response) -> DecisionOut:
    """Re-evaluate every rule right before dispatch; approve marks the order shipped."""
    started = time.perf_counter()
    change = await within(time_left(request), service.dispatch(db, order_id, caller))
    mark_replayed(response, change.replayed)
    if not change.replayed:
        DECISION_SECONDS.observe(time.perf_counter() - started)
        count(request, change.decided)
    assert change.decision is not None
    return change.decision


@router.post("/v1/orders/{order_id}/cancel", response_model=OrderOut,
             operation_id="cancel_order")
async def cancel_order(order_id: OrderId, db: DbDep, caller: OrderEntry, request: Request,
                       body: CancelIn | None = None) -> OrderOut:
    """Cancel and release the reservation. Cancelling again changes nothing."""
    change = await service.cancel(db, order_id, caller, body.reason if body else None)
    count(request, change.decided)
    return change.order


@router.post("/v1/orders/{order_id}/release", response_model=OrderOut,
             operation_id="release_order")
async def release_order(order_id: OrderId, body: ReasonIn, db: DbDep, caller: Controller,
                        request: Request) -> OrderOut:
    """Approve a held order (MANUAL_RELEASE); it reserves even beyond the limit."""
    change = await service.release(db, order_id, caller, body.reason)
    count(request, change.decided)
    return change.order


@router.post("/v1/orders/{order_id}/reject", response_model=OrderOut,
             operation_id="reject_order")
async def reject_order(order_id: OrderId, body: ReasonIn, db: DbDep, caller: Controller
                       ) -> OrderOut:
    """Turn a held order down."""
    return (await service.reject(db, order_id, caller, body.reason)).order


@router.get("/v1/holds", response_model=HoldsPage, operation_id="list_holds")
async def get_holds(
    db: DbDep, _: Controller,
    customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    cursor: Annotated[str | None, Query(pattern=HOLDS_CURSOR,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HoldsPage:
    """Held orders waiting for a controller, oldest first."""
    after = _decode_cursor(cursor) if cursor else None
    async with db.autocommit() as conn:
        found = await list_holds(conn, customer_id=customer_id, after=after, limit=limit + 1)
        items = [await render_order(conn, o) for o in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        next_cursor = _encode_cursor(last.created_at, last.order_id)
    return HoldsPage(items=items, next_cursor=next_cursor)


def _encode_cursor(at: dt.datetime, order_id: str) -> str:
    """A position in the queue: microseconds since the epoch, then the order id."""
    micros = (at - EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}~{order_id}"


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    micros, order_id = cursor.split("~", 1)
    return EPOCH + dt.timedelta(microseconds=min(int(micros), MAX_MICROS)), order_id
