"""SQL for securities (the securities table's owner); rates are read, never written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import LateralFromClause

from app.credit.policy import Security
from app.customers.tables import accounts
from app.fx.convert import counted_in
from app.fx.repository import latest_rate
from app.fx.tables import fx_rates
from app.securities.tables import securities

FIELDS = ("kind", "amount", "currency", "valid_from", "valid_until", "provider", "reference")


def rate_into(currency: ColumnElement[Any], account_currency: ColumnElement[Any],
              today: Any) -> Any:
    """The latest rate of `currency` into the account's on or before `today` (null in the
    same currency, or with no rate yet), as a correlated scalar subquery."""
    return (latest_rate(currency, account_currency, today)
            .where(currency != account_currency)
            .correlate_except(fx_rates).scalar_subquery())


def secured_sum(customer_id: ColumnElement[Any], account_currency: ColumnElement[Any],
                today: Any) -> Any:
    """SQL for what the outer account's securities valid on `today` add to its limit. For
    ranking only: a converted one is rounded half away from zero here (PostgreSQL's round),
    not half-even as `counted_in` does, which can differ by 0.0001."""
    s = securities.c
    rate = rate_into(s.currency, account_currency, today)
    counted = case((s.currency == account_currency, s.amount),
                   else_=func.round(s.amount * rate, 4))
    return (select(func.coalesce(func.sum(counted), literal(Decimal(0))))
            .where(s.customer_id == customer_id, s.valid_from <= today, s.valid_until >= today)
            .correlate_except(securities).scalar_subquery())


async def get(conn: AsyncConnection, customer_id: str, security_id: str) -> Any:
    stmt = select(securities).where(securities.c.customer_id == customer_id,
                                    securities.c.security_id == security_id)
    return (await conn.execute(stmt)).mappings().first()


async def with_rates(conn: AsyncConnection, customer_id: str, today: dt.date,
                     security_id: str | None = None) -> list[Any]:
    """The customer's securities (or one), by id, each with `fx_rate` into the account's
    currency as of `today` and `account_currency`."""
    s = securities.c
    stmt = (select(securities, accounts.c.currency.label("account_currency"),
                   rate_into(s.currency, accounts.c.currency, today).label("fx_rate"))
            .join_from(securities, accounts, accounts.c.customer_id == s.customer_id)
            .where(s.customer_id == customer_id).order_by(s.security_id))
    if security_id is not None:
        stmt = stmt.where(s.security_id == security_id)
    return list((await conn.execute(stmt)).mappings().all())


async def counted(conn: AsyncConnection, customer_id: str, today: dt.date
                  ) -> tuple[Security, ...]:
    """The securities valid today as they count in the account's currency."""
    found = []
    for row in await with_rates(conn, customer_id, today):
        amount = counted_in(row["amount"], row["currency"], row["account_currency"],
                           row["fx_rate"])
        if amount is not None and row["valid_from"] <= today <= row["valid_until"]:
            found.append(Security(amount, row["valid_from"], row["valid_until"]))
    return tuple(found)


async def insert_security(conn: AsyncConnection, customer_id: str, security_id: str,
                          values: dict[str, Any], now: dt.datetime) -> Any:
    stmt = (insert(securities)
            .values(customer_id=customer_id, security_id=security_id, **values,
                    created_at=now, updated_at=now)
            .returning(*securities.c))
    return (await conn.execute(stmt)).mappings().one()


async def update_security(conn: AsyncConnection, customer_id: str, security_id: str,
                          values: dict[str, Any], now: dt.datetime) -> Any:
    stmt = (update(securities)
            .where(securities.c.customer_id == customer_id,
                   securities.c.security_id == security_id)
            .values(**values, updated_at=now).returning(*securities.c))
    return (await conn.execute(stmt)).mappings().one()


async def delete_security(conn: AsyncConnection, customer_id: str, security_id: str) -> Any:
    stmt = (delete(securities)
            .where(securities.c.customer_id == customer_id,
                   securities.c.security_id == security_id)
            .returning(*securities.c))
    return (await conn.execute(stmt)).mappings().first()


def valid_arrays(customer_id: ColumnElement[Any], account_currency: ColumnElement[Any],
                 today: Any) -> LateralFromClause:
    """A LATERAL of the securities valid on `today` of the outer account, as arrays ordered
    by id: s_ids, s_amounts, s_currencies, s_rates, s_from, s_until (the `s_` columns that
    app/credit/rows.py reads; all null when there are none)."""
    s = securities.c
    rate = rate_into(s.currency, account_currency, today)

    def agg(column: Any, name: str) -> Any:
        return func.array_agg(aggregate_order_by(column, s.security_id)).label(name)

    return (select(agg(s.security_id, "s_ids"), agg(s.amount, "s_amounts"),
                   agg(s.currency, "s_currencies"), agg(rate, "s_rates"),
                   agg(s.valid_from, "s_from"), agg(s.valid_until, "s_until"))
            .where(s.customer_id == customer_id, s.valid_from <= today, s.valid_until >= today)
            .lateral("sc"))


def expiring(row: Any, account_currency: str) -> Sequence[tuple[str, Decimal, dt.date]]:
    """(security_id, counted amount, valid_until) of the `valid_arrays` columns of a row;
    one with no rate counts for nothing and is left out."""
    if not row.get("s_ids"):
        return ()
    found = []
    for sid, amount, cur, rate, until in zip(row["s_ids"], row["s_amounts"],
                                             row["s_currencies"], row["s_rates"],
                                             row["s_until"], strict=True):
        counted_amount = counted_in(amount, cur, account_currency, rate)
        if counted_amount is not None:
            found.append((sid, counted_amount, until))
    return found

