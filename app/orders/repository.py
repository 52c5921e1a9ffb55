"""SQL for orders."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.orders.models import Order, Status
from app.orders.tables import orders


async def get_order(conn: AsyncConnection, order_id: str) -> Order | None:
    row = (await conn.execute(select(orders).where(orders.c.order_id == order_id))
           ).mappings().first()
    return Order.from_mapping(row) if row is not None else None


async def update_order(conn: AsyncConnection, order: Order, **values: Any) -> None:
    await conn.execute(update(orders).where(orders.c.customer_id == order.customer_id,
                                            orders.c.order_id == order.order_id).values(**values))


async def held_orders(conn: AsyncConnection, *customer_ids: str) -> list[Order]:
    """The customers' held orders, oldest first (the auto-release order)."""
    stmt = (select(orders).where(orders.c.customer_id.in_(customer_ids),
                                 orders.c.status == Status.HELD.value)
            .order_by(orders.c.created_at, orders.c.order_id))
    return [Order.from_mapping(r) for r in (await conn.execute(stmt)).mappings()]


async def list_holds(conn: AsyncConnection, *, customer_id: str | None,
                     after: tuple[dt.datetime, str] | None, limit: int) -> list[Order]:
    """The hold queue, oldest first, keyset-paginated on (created_at, order_id)."""
    stmt = select(orders).where(orders.c.status == Status.HELD.value)
    if customer_id is not None:
        stmt = stmt.where(orders.c.customer_id == customer_id)
    if after is not None:
        at, order_id = after
        stmt = stmt.where(or_(orders.c.created_at > at,
                              and_(orders.c.created_at == at, orders.c.order_id > order_id)))
    stmt = stmt.order_by(orders.c.created_at, orders.c.order_id).limit(limit)
    return [Order.from_mapping(r) for r in (await conn.execute(stmt)).mappings()]


async def expired_reservations(conn: AsyncConnection, now: dt.datetime, limit: int
                               ) -> list[tuple[str, str]]:
    """(customer_id, order_id) of approved orders whose reservation has lapsed."""
    stmt = (select(orders.c.customer_id, orders.c.order_id)
            .where(orders.c.status == Status.APPROVED.value, orders.c.expires_at <= now)
            .order_by(orders.c.expires_at).limit(limit))
    return [(r.customer_id, r.order_id) for r in await conn.execute(stmt)]
