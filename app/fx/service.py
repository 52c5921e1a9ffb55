"""Exchange rates: store a pair's rate for a day, list what is stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app import clock
from app.auth.roles import Caller
from app.db.engine import ALL_CUSTOMERS, Database, touch
from app.errors import Unprocessable
from app.fx import repository as repo
from app.fx.schemas import FxRateIn, FxRateOut, FxRatesPage


def _out(row: Any) -> FxRateOut:
    return FxRateOut(from_=row["from_currency"], to=row["to_currency"], as_of=row["as_of"],
                     rate=row["rate"], updated_at=row["updated_at"], updated_by=row["actor"])


async def put_rate(db: Database, from_currency: str, to_currency: str, body: FxRateIn,
                   caller: Caller) -> tuple[FxRateOut, bool]:
    """Store the pair's rate for `as_of` (the same day replaces); True when it is new."""
    if from_currency == to_currency:
        raise Unprocessable("invalid fields: path.to", code="validation_error", extra={
            "errors": [{"field": "path.to", "message": "must differ from `from`"}]})
    row = {"from_currency": from_currency, "to_currency": to_currency, "as_of": body.as_of,
           "rate": body.rate, "actor": caller.name, "updated_at": clock.now()}
    async with db.begin() as conn:
        # Cached states hold securities converted at the day's latest rate.
        touch(ALL_CUSTOMERS)
        created = await repo.store_rate(conn, row)
    return _out(row), created


async def list_rates(db: Database, from_currency: str | None, to_currency: str | None,
                     cursor: str | None, limit: int) -> FxRatesPage:
    after = None
    if cursor is not None:
        from_after, to_after, day = cursor.split(":")
        try:
            after = (from_after, to_after, dt.date.fromisoformat(day))
        except ValueError:
            raise Unprocessable("cursor is not a next_cursor of this listing",
                                code="validation_error") from None
    async with db.autocommit() as conn:
        rows = await repo.list_rates(conn, from_currency=from_currency,
                                     to_currency=to_currency, after=after, limit=limit + 1)
    items = [_out(r) for r in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    next_cursor = None if last is None else f"{last.from_}:{last.to}:{last.as_of.isoformat()}"
    return FxRatesPage(items=items, next_cursor=next_cursor)
