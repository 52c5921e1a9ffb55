"""Persisting a credit check: the order, its decision and the account aggregates, atomically.

On PostgreSQL this is one statement (data-modifying CTEs), so a check costs two round trips
in all: one read, one write. The write is guarded: it only applies if what the decision was
based on is still true, which makes the check race-free without holding a lock while Python
decides. Elsewhere (SQLite) the same rows are written statement by statement inside the
caller's transaction, which already holds the write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Insert, insert, literal, select, update
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
    conditions: list[ColumnElement[bool]] = [
        accounts.c.customer_id == w.order["customer_id"]]
    g = w.guard
    if g is not None:
        conditions += [accounts.c.terms_version == g.terms_version,
                       accounts.c.ledger_version == g.ledger_version]
        if g.within is not None:
            conditions.append(
                accounts.c.open_receivables + accounts.c.open_orders + w.reserve <= g.within)
        else:
            conditions.append(accounts.c.open_orders == g.open_orders)
    values: dict[str, Any] = {"updated_at": w.order["created_at"]}
    if w.reserve:
        values["open_orders"] = accounts.c.open_orders + w.reserve
    if w.held:
        values["held_amount"] = accounts.c.held_amount + w.held
        values["held_count"] = accounts.c.held_count + 1
    return (update(accounts).where(*conditions).values(**values)
            .returning(accounts.c.open_receivables.label("recv"),
                       (accounts.c.open_orders - w.reserve).label("before")))


def _with_exposure(w: CheckWrite, recv: Any, before: Any) -> dict[str, Any]:
    return {**w.entry, "open_receivables": recv, "open_orders": before,
            "available": w.effective_limit - (recv + before + w.reserve)}


def _insert_from(table: Any, values: dict[str, Any], source: Any) -> Insert:
    columns = list(values)
    row = [v if isinstance(v, ColumnElement) else literal(v, table.c[k].type)
           for k, v in values.items()]
    return insert(table).from_select(columns, select(*row).select_from(source))


async def write_check(conn: AsyncConnection, w: CheckWrite, *, fused: bool) -> Written | None:
    """Apply the write; None when the guard no longer holds (nothing was written)."""
    touch(w.order["customer_id"])
    acct_update = _account_update(w)
    if fused:
        acct = acct_update.cte("acct")
        ins_order = _insert_from(orders, w.order, acct).returning(orders.c.order_id).cte("o")
        entry = _with_exposure(w, acct.c.recv, acct.c.before)
        ins_entry = (_insert_from(credit_file, entry, acct)
                     .returning(credit_file.c.entry_id).cte("e"))
        stmt = select(acct.c.recv, acct.c.before).add_cte(ins_order, ins_entry)
        row = (await conn.execute(stmt)).first()
        return Written(row.recv, row.before) if row is not None else None
    row = (await conn.execute(acct_update)).first()
    if row is None:
        return None
    await conn.execute(insert(orders).values(**w.order))
    await conn.execute(insert(credit_file).values(**_with_exposure(w, row.recv, row.before)))
    return Written(row.recv, row.before)


async def write_unknown_customer(conn: AsyncConnection, order: dict[str, Any],
                                 entry: dict[str, Any]) -> None:
    """An order for a customer without an account: recorded as prepay, nothing reserved."""
    await conn.execute(insert(orders).values(**order))
    await conn.execute(insert(credit_file).values(**entry))
