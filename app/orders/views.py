"""HTTP routes of the order lifecycle and the hold queue."""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.credit.schemas import DecisionOut
from app.deps import Controller, DbDep, OrderEntry, OrderReader, Warehouse
from app.errors import Unprocessable
from app.fields import ID_PATTERN
from app.http import DecimalRoute, mark_replayed
from app.metrics import DECISION_SECONDS
from app.observe import count
from app.orders import service
from app.orders.repository import list_holds
from app.orders.schemas import AmendIn, AmendOut, CancelIn, HoldsPage, OrderOut, ReasonIn

router = APIRouter(tags=["orders"], route_class=DecimalRoute)
OrderId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get("/v1/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: OrderId, db: DbDep, _: OrderReader) -> OrderOut:
    """The order, its status, what it reserves and every decision about it."""
    return await service.read_order(db, order_id)


@router.patch("/v1/orders/{order_id}", response_model=AmendOut)
async def amend_order(order_id: OrderId, body: AmendIn, db: DbDep, caller: OrderEntry,
                      request: Request) -> AmendOut:
    """Change an approved order's amount. An increase that is not approved changes nothing."""
    change = await service.amend(db, order_id, body.amount, caller)
    count(request, change.decided)
    return AmendOut(order=change.order, decision=change.decision)


@router.post("/v1/orders/{order_id}/dispatch-check", response_model=DecisionOut,
             responses={200: {"description": "The decision; approve means shipped."}})
async def dispatch_check(order_id: OrderId, db: DbDep, caller: Warehouse, request: Request,
                         response: Response) -> DecisionOut:
    """Re-evaluate every rule right before dispatch; approve marks the order shipped."""
    started = time.perf_counter()
    change = await service.dispatch(db, order_id, caller)
    mark_replayed(response, change.replayed)
    if not change.replayed:
        DECISION_SECONDS.observe(time.perf_counter() - started)
        count(request, change.decided)
    assert change.decision is not None
    return change.decision


@router.post("/v1/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(order_id: OrderId, db: DbDep, caller: OrderEntry, request: Request,
                       body: CancelIn | None = None) -> OrderOut:
    """Cancel and release the reservation. Cancelling again changes nothing."""
    change = await service.cancel(db, order_id, caller, body.reason if body else None)
    count(request, change.decided)
    return change.order


@router.post("/v1/orders/{order_id}/release", response_model=OrderOut)
async def release_order(order_id: OrderId, body: ReasonIn, db: DbDep, caller: Controller,
                        request: Request) -> OrderOut:
    """Approve a held order (MANUAL_RELEASE); it reserves even beyond the limit."""
    change = await service.release(db, order_id, caller, body.reason)
    count(request, change.decided)
    return change.order


@router.post("/v1/orders/{order_id}/reject", response_model=OrderOut)
async def reject_order(order_id: OrderId, body: ReasonIn, db: DbDep, caller: Controller
                       ) -> OrderOut:
    """Turn a held order down."""
    return (await service.reject(db, order_id, caller, body.reason)).order


@router.get("/v1/holds", response_model=HoldsPage)
async def get_holds(
    db: DbDep, _: Controller,
    customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HoldsPage:
    """Held orders waiting for a controller, oldest first."""
    after = _decode_cursor(cursor) if cursor else None
    async with db.autocommit() as conn:
        found = await list_holds(conn, customer_id=customer_id, after=after, limit=limit + 1)
        items = [await service.render_order(conn, o) for o in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        next_cursor = _encode_cursor(last.created_at, last.order_id)
    return HoldsPage(items=items, next_cursor=next_cursor)


def _encode_cursor(at: dt.datetime, order_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{order_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        at, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, order_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("cursor is not one this API returned", code="invalid_cursor"
                            ) from exc
