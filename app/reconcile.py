"""Recompute every maintained aggregate from line items and report any drift."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.tables import accounts
from app.db import touch
from app.money import ZERO
from app.orders.models import RESERVING, Status
from app.orders.tables import orders
from app.receivables.tables import open_items, payments

AGGREGATES = ("open_receivables", "open_orders", "held_amount", "held_count")


@dataclass(frozen=True)
class Drift:
    customer_id: str
    aggregate: str
    maintained: Decimal | int
    recomputed: Decimal | int


def _recomputed() -> Any:
    items = (select(open_items.c.customer_id, func.sum(open_items.c.open_amount).label("s"))
             .group_by(open_items.c.customer_id).subquery("items"))
    credit = (select(payments.c.customer_id, func.sum(payments.c.unapplied).label("s"))
              .group_by(payments.c.customer_id).subquery("credit"))
    reserving = orders.c.status.in_([s.value for s in RESERVING])
    held = orders.c.status == Status.HELD.value
    order_sums = (select(
        orders.c.customer_id,
        func.sum(case((reserving, orders.c.reserved), else_=0)).label("reserved"),
        func.sum(case((held, orders.c.amount), else_=0)).label("held_amount"),
        func.sum(case((held, 1), else_=0)).label("held_count"),
    ).group_by(orders.c.customer_id).subquery("order_sums"))
    return (
        select(accounts.c.customer_id, *(accounts.c[a] for a in AGGREGATES),
               items.c.s.label("items"), credit.c.s.label("credit"),
               order_sums.c.reserved, order_sums.c.held_amount.label("held"),
               order_sums.c.held_count.label("held_n"))
        .select_from(accounts
                     .outerjoin(items, items.c.customer_id == accounts.c.customer_id)
                     .outerjoin(credit, credit.c.customer_id == accounts.c.customer_id)
                     .outerjoin(order_sums, order_sums.c.customer_id == accounts.c.customer_id))
        .order_by(accounts.c.customer_id))


async def find_drift(conn: AsyncConnection) -> list[Drift]:
    """Every aggregate whose maintained value differs from its recomputation."""
    drift: list[Drift] = []
    for row in await conn.execute(_recomputed()):
        expected = {
            "open_receivables": (row.items or ZERO) - (row.credit or ZERO),
            "open_orders": row.reserved or ZERO,
            "held_amount": row.held or ZERO,
            "held_count": int(row.held_n or 0),
        }
        for name, value in expected.items():
            if getattr(row, name) != value:
                drift.append(Drift(row.customer_id, name, getattr(row, name), value))
    stray = select(orders.c.customer_id, orders.c.order_id, orders.c.reserved).where(
        orders.c.reserved != 0, orders.c.status.not_in([s.value for s in RESERVING]))
    for row in await conn.execute(stray):
        drift.append(Drift(row.customer_id, f"order {row.order_id} reserved", row.reserved,
                           ZERO))
    return drift


async def repair(conn: AsyncConnection, drift: list[Drift]) -> int:
    """Set drifted account aggregates to their recomputed values; returns rows fixed."""
    fixed = 0
    for d in drift:
        if d.aggregate in AGGREGATES:
            await conn.execute(update(accounts).where(accounts.c.customer_id == d.customer_id)
                               .values({d.aggregate: d.recomputed}))
            touch(d.customer_id)
            fixed += 1
    return fixed
