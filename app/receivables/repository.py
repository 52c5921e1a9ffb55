"""SQL for open items and payments."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.receivables.tables import open_items, payments

_CHUNK = 1000


async def get_item(conn: AsyncConnection, invoice_id: str) -> Any:
    stmt = select(open_items).where(open_items.c.invoice_id == invoice_id)
    return (await conn.execute(stmt)).mappings().first()


async def insert_items(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(open_items), rows)


async def set_open_amounts(conn: AsyncConnection, customer_id: str,
                           changes: list[dict[str, Any]]) -> None:
    """Bulk-set open_amount (and due_on where given) per invoice of one customer."""
    if not changes:
        return
    stmt = (update(open_items)
            .where(open_items.c.customer_id == customer_id,
                   open_items.c.invoice_id == bindparam("b_invoice_id"))
            .values(open_amount=bindparam("b_open_amount"), due_on=bindparam("b_due_on"),
                    updated_at=bindparam("b_updated_at")))
    await conn.execute(stmt, [{f"b_{k}": v for k, v in c.items()} for c in changes])


async def oldest_open_items(conn: AsyncConnection, customer_id: str, after: tuple[Any, str] | None,
                            limit: int) -> list[Any]:
    """Positive open items, oldest due first, keyset-paginated on (due_on, invoice_id)."""
    stmt = select(open_items.c.invoice_id, open_items.c.open_amount, open_items.c.due_on).where(
        open_items.c.customer_id == customer_id, open_items.c.open_amount > 0)
    if after is not None:
        stmt = stmt.where(
            (open_items.c.due_on > after[0])
            | ((open_items.c.due_on == after[0]) & (open_items.c.invoice_id > after[1])))
    stmt = stmt.order_by(open_items.c.due_on, open_items.c.invoice_id).limit(limit)
    return list((await conn.execute(stmt)).all())


async def items_of(conn: AsyncConnection, customer_id: str) -> dict[str, Any]:
    """Every item the customer has ever had, by invoice_id."""
    c = open_items.c
    stmt = select(c.invoice_id, c.open_amount, c.due_on, c.issued_on, c.created_at).where(
        c.customer_id == customer_id)
    return {r.invoice_id: r for r in await conn.execute(stmt)}


async def owners_elsewhere(conn: AsyncConnection, customer_id: str, invoice_ids: Iterable[str]
                           ) -> dict[str, str]:
    """invoice_id -> customer_id for ids that belong to another customer."""
    ids = list(invoice_ids)
    found: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = select(open_items.c.invoice_id, open_items.c.customer_id).where(
            open_items.c.invoice_id.in_(ids[start:start + _CHUNK]),
            open_items.c.customer_id != customer_id)
        found.update({r.invoice_id: r.customer_id for r in await conn.execute(stmt)})
    return found


async def get_payment(conn: AsyncConnection, payment_id: str) -> Any:
    stmt = select(payments).where(payments.c.payment_id == payment_id)
    return (await conn.execute(stmt)).mappings().first()


async def insert_payment(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(payments).values(**row))


async def clear_unapplied(conn: AsyncConnection, customer_id: str) -> Decimal:
    """Zero the customer's unapplied payment credit; returns how much there was."""
    where = (payments.c.customer_id == customer_id, payments.c.unapplied != 0)
    total = await conn.scalar(select(func.sum(payments.c.unapplied)).where(*where))
    if total:
        await conn.execute(update(payments).where(*where).values(unapplied=0))
    return Decimal(total or 0)
