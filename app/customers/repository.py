"""SQL for accounts and their maintained aggregates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.locking import lock_account
from app.customers.models import Account
from app.customers.tables import accounts
from app.db.engine import touch
from app.money import ZERO


async def get_account(conn: AsyncConnection, customer_id: str, *, lock: bool = False
                      ) -> Account | None:
    """The account, optionally locked FOR UPDATE (the per-customer serialisation point),
    its credit group's row first (app/customers/locking.py)."""
    if lock:
        found = await lock_account(conn, customer_id)
        return None if found is None else Account.from_mapping(found)
    stmt = select(accounts).where(accounts.c.customer_id == customer_id)
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


async def set_payment_index(conn: AsyncConnection, customer_id: str, value: int | None) -> None:
    """Store the recomputed payment index (DESIGN 2.2). It is an input of every decision
    (SLOW_PAYER), so it bumps ledger_version like any ledger change: an optimistic check
    decided on the old index does not land."""
    touch(customer_id)
    await conn.execute(
        update(accounts).where(accounts.c.customer_id == customer_id).values(
            payment_index=value, ledger_version=accounts.c.ledger_version + 1))


async def members_holding(conn: AsyncConnection, group_id: str) -> list[str]:
    """The members of a credit group with held orders, in customer order (the lock order)."""
    stmt = (select(accounts.c.customer_id)
            .where(accounts.c.group_id == group_id, accounts.c.held_count > 0)
            .order_by(accounts.c.customer_id))
    return list((await conn.execute(stmt)).scalars())
