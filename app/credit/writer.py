"""What a credit check writes: the order, its decision and the account aggregates.

`CheckWrite` describes the write; on PostgreSQL app/credit/pg.py performs it as one guarded
statement (it only lands if what the decision was based on still holds, so nothing is locked
while Python decides). On SQLite `write_check` performs it statement by statement inside the
caller's transaction, which already holds the database's write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.tables import accounts, credit_file
from app.db import touch
from app.orders.tables import orders


@dataclass(frozen=True)
class Guard:
    """What must still hold when the write lands for the decision to stand.

    An approval stays valid as long as terms and receivables are unchanged and the order
    still fits: `within` is the largest exposure + order allowed. Any other outcome requires
    the exact open-orders figure it reported.
    """

    terms_version: int
    ledger_version: int
    policy_version: int
    within: Decimal | None = None
    open_orders: Decimal | None = None


@dataclass(frozen=True)
class CheckWrite:
    order: dict[str, Any]
    entry: dict[str, Any]
    reserve: Decimal
    held: Decimal
    effective_limit: Decimal
    guard: Guard | None


@dataclass(frozen=True)
class Written:
    open_receivables: Decimal
    open_orders_before: Decimal


def _account_update(w: CheckWrite) -> Any:
    # Only under the caller's write lock: the guarded form is PostgreSQL's (app/credit/pg.py).
    assert w.guard is None, "the statement-by-statement write is never guarded"
    values: dict[str, Any] = {"updated_at": w.order["created_at"]}
    if w.reserve:
        values["open_orders"] = accounts.c.open_orders + w.reserve
    if w.held:
        values["held_amount"] = accounts.c.held_amount + w.held
        values["held_count"] = accounts.c.held_count + 1
    return (update(accounts).where(accounts.c.customer_id == w.order["customer_id"])
            .values(**values)
            .returning(accounts.c.open_receivables.label("recv"),
                       (accounts.c.open_orders - w.reserve).label("before")))


def _with_exposure(w: CheckWrite, recv: Any, before: Any) -> dict[str, Any]:
    return {**w.entry, "open_receivables": recv, "open_orders": before,
            "available": w.effective_limit - (recv + before + w.reserve)}


async def write_check(conn: AsyncConnection, w: CheckWrite) -> Written:
    """Apply the write statement by statement, inside the caller's (locked) transaction."""
    touch(w.order["customer_id"])
    row = (await conn.execute(_account_update(w))).one()
    await conn.execute(insert(orders).values(**w.order))
    await conn.execute(insert(credit_file).values(**_with_exposure(w, row.recv, row.before)))
    return Written(row.recv, row.before)


async def write_unknown_customer(conn: AsyncConnection, order: dict[str, Any],
                                 entry: dict[str, Any]) -> None:
    """An order for a customer without an account: recorded as prepay, nothing reserved."""
    await conn.execute(insert(orders).values(**order))
    await conn.execute(insert(credit_file).values(**entry))
