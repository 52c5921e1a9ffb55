"""Payment behaviour (DESIGN 2.2): keep its aggregates and the account's payment index
current, in the transaction of the event that changes them, and read the figures as of a day.

Nothing here sums a customer's history: the applications of the last 365 days are at most
365 `payment_days` rows, invoiced sales at most 365 `invoiced_days` rows, and the open
overdue part comes from the partial index ix_open_items_due (positive open items only,
carrying open_amount), the same facts the credit check reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.repository import set_payment_index
from app.errors import NotFound
from app.receivables import behaviour as b
from app.receivables.tables import invoiced_days, payment_applications, payment_days

_DATES = text("""SELECT invoice_id, due_on, issued_on FROM open_items
    WHERE customer_id = :customer_id AND invoice_id = ANY(:invoice_ids)""")

_APPLIED = text("""SELECT COALESCE(sum(amount), 0) AS amount,
        COALESCE(sum(late_days), 0) AS late_days, COALESCE(sum(on_time), 0) AS on_time,
        COALESCE(sum(dated_amount), 0) AS dated_amount,
        COALESCE(sum(dated_days), 0) AS dated_days, max(max_days_late) AS max_days_late
    FROM payment_days
    WHERE customer_id = :customer_id AND received_on BETWEEN :start AND :today""")

# Index-only on ix_open_items_due: (customer_id, due_on) WHERE open_amount > 0
# INCLUDE (open_amount). `positive` reads every positive open item (the DSO figures);
# the payment index needs only the overdue ones, `overdue_only` narrows the range to those.
_OPEN = """SELECT COALESCE(sum(open_amount), 0) AS positive,
        COALESCE(sum(open_amount) FILTER (WHERE due_on < :today), 0) AS overdue,
        COALESCE(sum(open_amount * (CAST(:today AS date) - due_on))
            FILTER (WHERE due_on < :today), 0) AS overdue_days,
        CAST(:today AS date) - min(due_on) FILTER (WHERE due_on < :today)
            AS oldest_overdue_days
    FROM open_items WHERE customer_id = :customer_id AND open_amount > 0"""
_OPEN_ALL = text(_OPEN)
_OPEN_OVERDUE = text(_OPEN + " AND due_on < :today")

_INVOICED = text("""SELECT COALESCE(sum(amount) FILTER (WHERE invoiced_on >= :start_90), 0)
            AS days_90,
        COALESCE(sum(amount), 0) AS days_365,
        COALESCE((SELECT max(month_total) FROM (
            SELECT sum(amount) AS month_total FROM invoiced_days
            WHERE customer_id = :customer_id AND invoiced_on BETWEEN :start AND :today
            GROUP BY date_trunc('month', invoiced_on)) months), 0) AS highest_month
    FROM invoiced_days
    WHERE customer_id = :customer_id AND invoiced_on BETWEEN :start AND :today""")

_ACCOUNT = text("SELECT payment_index FROM accounts WHERE customer_id = :customer_id")
_ACCOUNT_LOCKED = text(_ACCOUNT.text + " FOR UPDATE")


async def record_payment(conn: AsyncConnection, customer_id: str, payment_id: str,
                         received_on: dt.date, applied: Sequence[Any], today: dt.date) -> None:
    """A payment's allocations (`invoice_id`, `amount` each): its line items, its day's
    bucket, and the account's payment index."""
    if applied:
        dates = {r.invoice_id: r for r in await conn.execute(_DATES, {
            "customer_id": customer_id, "invoice_ids": [a.invoice_id for a in applied]})}
        rows = [{"customer_id": customer_id, "payment_id": payment_id,
                 "invoice_id": a.invoice_id, "amount": a.amount, "received_on": received_on,
                 "due_on": dates[a.invoice_id].due_on,
                 "issued_on": dates[a.invoice_id].issued_on} for a in applied]
        await conn.execute(insert(payment_applications), rows)
        total = b.Applied()
        for row in rows:
            total += b.application(row["amount"], received_on, row["due_on"], row["issued_on"])
        await _add_to_day(conn, customer_id, received_on, total)
    await refresh_payment_index(conn, customer_id, today)


async def _add_to_day(conn: AsyncConnection, customer_id: str, received_on: dt.date,
                      add: b.Applied) -> None:
    stmt = pg_insert(payment_days).values(
        customer_id=customer_id, received_on=received_on, amount=add.amount,
        late_days=add.late_days, on_time=add.on_time, dated_amount=add.dated_amount,
        dated_days=add.dated_days, max_days_late=add.max_days_late)
    new, c = stmt.excluded, payment_days.c
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[c.customer_id, c.received_on],
        set_={"amount": c.amount + new.amount, "late_days": c.late_days + new.late_days,
              "on_time": c.on_time + new.on_time,
              "dated_amount": c.dated_amount + new.dated_amount,
              "dated_days": c.dated_days + new.dated_days,
              "max_days_late": text("GREATEST(payment_days.max_days_late, "
                                    "excluded.max_days_late)")}))


async def record_invoice(conn: AsyncConnection, customer_id: str, amount: Decimal,
                         issued_on: dt.date | None, now: dt.datetime, today: dt.date) -> None:
    """An invoice posted: invoiced sales on its issued_on (else the UTC day it was posted),
    and the payment index (an invoice already past due is overdue at once)."""
    day = issued_on or now.astimezone(dt.UTC).date()
    stmt = pg_insert(invoiced_days).values(customer_id=customer_id, invoiced_on=day,
                                           amount=amount)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[invoiced_days.c.customer_id, invoiced_days.c.invoiced_on],
        set_={"amount": invoiced_days.c.amount + stmt.excluded.amount}))
    await refresh_payment_index(conn, customer_id, today)


async def _applied(conn: AsyncConnection, customer_id: str, today: dt.date) -> b.Applied:
    row = (await conn.execute(_APPLIED, {"customer_id": customer_id,
                                         "start": b.window_start(today), "today": today})).one()
    return b.Applied(amount=Decimal(row.amount), late_days=Decimal(row.late_days),
                     on_time=Decimal(row.on_time), dated_amount=Decimal(row.dated_amount),
                     dated_days=Decimal(row.dated_days), max_days_late=row.max_days_late)


async def _open(conn: AsyncConnection, customer_id: str, today: dt.date, *,
                overdue_only: bool) -> b.OpenFacts:
    row = (await conn.execute(_OPEN_OVERDUE if overdue_only else _OPEN_ALL,
                              {"customer_id": customer_id, "today": today})).one()
    return b.OpenFacts(positive=Decimal(row.positive), overdue=Decimal(row.overdue),
                       overdue_days=Decimal(row.overdue_days),
                       oldest_overdue_days=row.oldest_overdue_days)


async def _invoiced(conn: AsyncConnection, customer_id: str, today: dt.date) -> b.Invoiced:
    row = (await conn.execute(_INVOICED, {
        "customer_id": customer_id, "today": today, "start": b.window_start(today),
        "start_90": b.window_start(today, b.DSO_DAYS)})).one()
    return b.Invoiced(days_90=Decimal(row.days_90), days_365=Decimal(row.days_365),
                      highest_month=Decimal(row.highest_month))


async def payment_index_as_of(conn: AsyncConnection, customer_id: str, today: dt.date
                              ) -> int | None:
    """The payment index the aggregates give as of `today` (nothing is written)."""
    applied = await _applied(conn, customer_id, today)
    open_ = await _open(conn, customer_id, today, overdue_only=True)
    return b.payment_index(b.days_beyond_terms(applied, open_))


async def refresh_payment_index(conn: AsyncConnection, customer_id: str, today: dt.date
                                ) -> int | None:
    """Recompute accounts.payment_index exactly as of `today`, under the account's row lock,
    in the caller's transaction; written (and the cache retired) only when it changes.
    The daily sweep calls this too: time alone makes open items later. An unknown customer
    has no index (None)."""
    row = (await conn.execute(_ACCOUNT_LOCKED, {"customer_id": customer_id})).first()
    if row is None:
        return None
    value = await payment_index_as_of(conn, customer_id, today)
    if value != row.payment_index:
        await set_payment_index(conn, customer_id, value)
    return value


async def behaviour_of(conn: AsyncConnection, customer_id: str, today: dt.date
                       ) -> b.PaymentBehaviour:
    """Every payment-behaviour figure of the customer as of `today`; NotFound
    (customer_not_found) for an unknown customer."""
    if (await conn.execute(_ACCOUNT, {"customer_id": customer_id})).first() is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    return b.behaviour(await _applied(conn, customer_id, today),
                       await _open(conn, customer_id, today, overdue_only=False),
                       await _invoiced(conn, customer_id, today))
