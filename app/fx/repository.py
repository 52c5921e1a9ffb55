"""Reading and storing exchange rates (the fx_rates table's owner)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fx.convert import Conversion
from app.fx.tables import fx_rates


def latest_rate(from_currency: Any, to_currency: Any, on: Any) -> Select[Any]:
    """The latest rate of the direct pair dated on or before `on` (DESIGN.md 2.9: no inverse,
    no triangulation; a rate dated later is not used yet); its arguments may be values or
    columns of an outer query (app/credit/sql.py spells the same in the hot path's SQL)."""
    return (select(fx_rates.c.rate)
            .where(fx_rates.c.from_currency == from_currency,
                   fx_rates.c.to_currency == to_currency, fx_rates.c.as_of <= on)
            .order_by(fx_rates.c.as_of.desc()).limit(1))


async def rate_on(conn: AsyncConnection, from_currency: str, to_currency: str, on: dt.date
                  ) -> Decimal | None:
    """`latest_rate` of the pair, read now."""
    rate: Decimal | None = (await conn.execute(latest_rate(from_currency, to_currency, on))
                            ).scalar()
    return rate


async def conversion(conn: AsyncConnection, amount: Decimal, currency: str,
                     account_currency: str, on: dt.date) -> Conversion:
    """`amount` in `currency` as it counts in the account's currency on `on`; 422
    fx_rate_missing without a rate."""
    rate = None
    if currency != account_currency:
        rate = await rate_on(conn, currency, account_currency, on)
    return Conversion.of(amount, currency, account_currency, rate)


async def store_rate(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Insert the pair's rate for its day, or replace the one stored for it; True if new."""
    inserted = await conn.execute(pg_insert(fx_rates).values(**row).on_conflict_do_nothing()
                                  .returning(fx_rates.c.as_of))
    if inserted.first() is not None:
        return True
    await conn.execute(update(fx_rates).where(
        fx_rates.c.from_currency == row["from_currency"],
        fx_rates.c.to_currency == row["to_currency"], fx_rates.c.as_of == row["as_of"])
        .values(rate=row["rate"], actor=row["actor"], updated_at=row["updated_at"]))
    return False


async def list_rates(conn: AsyncConnection, *, from_currency: str | None,
                     to_currency: str | None, after: tuple[str, str, dt.date] | None,
                     limit: int) -> list[Any]:
    """Stored rates by (from, to, as_of), strictly after the `after` key."""
    c = fx_rates.c
    stmt = select(fx_rates)
    if from_currency is not None:
        stmt = stmt.where(c.from_currency == from_currency)
    if to_currency is not None:
        stmt = stmt.where(c.to_currency == to_currency)
    if after is not None:
        stmt = stmt.where(tuple_(c.from_currency, c.to_currency, c.as_of) > tuple_(*after))
    stmt = stmt.order_by(c.from_currency, c.to_currency, c.as_of).limit(limit)
    return list((await conn.execute(stmt)).mappings().all())
