"""SQL for accounts, their aggregates and the credit file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.models import Account
from app.customers.tables import accounts, credit_file
from app.db import touch
from app.money import ZERO


async def get_account(conn: AsyncConnection, customer_id: str, *, lock: bool = False
                      ) -> Account | None:
    """The account, optionally locked FOR UPDATE (the per-customer serialisation point)."""
    stmt = select(accounts).where(accounts.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    return Account.from_mapping(row) if row is not None else None


async def insert_account(conn: AsyncConnection, values: dict[str, Any], now: dt.datetime
                         ) -> None:
    touch(values["customer_id"])
    await conn.execute(insert(accounts).values(
        **values, open_receivables=ZERO, open_orders=ZERO, held_amount=ZERO, held_count=0,
        terms_version=1, ledger_version=1, created_at=now, updated_at=now))


async def update_terms(conn: AsyncConnection, customer_id: str, values: dict[str, Any],
                       now: dt.datetime) -> None:
    """Change terms; bumping terms_version invalidates in-flight optimistic checks."""
    touch(customer_id)
    await conn.execute(
        update(accounts).where(accounts.c.customer_id == customer_id).values(
            **values, terms_version=accounts.c.terms_version + 1, updated_at=now))


async def apply_deltas(
    conn: AsyncConnection,
    customer_id: str,
    now: dt.datetime,
    *,
    receivables: Decimal = ZERO,
    orders: Decimal = ZERO,
    held_amount: Decimal = ZERO,
    held_count: int = 0,
    ledger_changed: bool = False,
) -> None:
    """Move the maintained aggregates by the given deltas, in the caller's transaction."""
    touch(customer_id)
    values: dict[str, Any] = {"updated_at": now}
    if receivables:
        values["open_receivables"] = accounts.c.open_receivables + receivables
    if orders:
        values["open_orders"] = accounts.c.open_orders + orders
    if held_amount:
        values["held_amount"] = accounts.c.held_amount + held_amount
    if held_count:
        values["held_count"] = accounts.c.held_count + held_count
    if ledger_changed or receivables:
        values["ledger_version"] = accounts.c.ledger_version + 1
    await conn.execute(
        update(accounts).where(accounts.c.customer_id == customer_id).values(**values))


async def add_entries(conn: AsyncConnection, entries: list[dict[str, Any]]) -> None:
    """Append to credit files. There is deliberately no update or delete."""
    if entries:
        await conn.execute(insert(credit_file), entries)


async def list_entries(conn: AsyncConnection, customer_id: str, *, before: str | None,
                       limit: int) -> list[Any]:
    """Credit-file entries, newest first, strictly older than the cursor entry."""
    stmt = select(credit_file).where(credit_file.c.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(credit_file.c.entry_id < before)
    stmt = stmt.order_by(credit_file.c.entry_id.desc()).limit(limit)
    return list((await conn.execute(stmt)).mappings().all())


async def order_entries(conn: AsyncConnection, customer_id: str, order_id: str) -> list[Any]:
    """Every credit-file entry about one order, oldest first."""
    stmt = (select(credit_file)
            .where(credit_file.c.customer_id == customer_id, credit_file.c.order_id == order_id)
            .order_by(credit_file.c.entry_id))
    return list((await conn.execute(stmt)).mappings().all())


async def get_entry(conn: AsyncConnection, customer_id: str, entry_id: str) -> Any:
    stmt = select(credit_file).where(credit_file.c.customer_id == customer_id,
                                     credit_file.c.entry_id == entry_id)
    return (await conn.execute(stmt)).mappings().one()
