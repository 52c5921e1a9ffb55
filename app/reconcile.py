"""Recompute every maintained aggregate from line items and report any drift."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.customers.locking import lock_account, lock_groups_of
from app.customers.repository import set_payment_index
from app.customers.tables import accounts
from app.db.engine import touch
from app.money import ZERO
from app.orders.models import RESERVING, Status
from app.orders.tables import orders
from app.receivables import behaviour as b
from app.receivables.tables import open_items, payments

AGGREGATES = ("open_receivables", "open_orders", "held_amount", "held_count")


@dataclass(frozen=True)
class Drift:
    """A maintained value and its recomputation; for a credit group's (an aggregate named
    `group ...`), `customer_id` is the group's id."""

    customer_id: str
    aggregate: str
    maintained: Decimal | int | None
    recomputed: Decimal | int | None


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
        func.sum(case((held, orders.c.converted_amount), else_=0)).label("held_amount"),
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


async def find_drift(conn: AsyncConnection, today: dt.date | None = None) -> list[Drift]:
    """Every aggregate whose maintained value differs from its recomputation (the payment
    index as of `today`, by default the service's today)."""
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
    drift += await _bucket_drift(conn, PAYMENT_DAYS)
    drift += await _bucket_drift(conn, INVOICED_DAYS)
    drift += await _payment_index_drift(conn, today or clock.today())
    drift += await _group_drift(conn)
    return drift


# ------------------------------------------------------------------ payment behaviour (2.2)


@dataclass(frozen=True)
class Buckets:
    """A per-(customer, day) aggregate table and its recomputation from line items."""

    table: str
    day: str
    columns: tuple[str, ...]
    recompute: str  # SELECT customer_id, <day>, <columns> ... GROUP BY customer_id, <day>


PAYMENT_DAYS = Buckets(
    "payment_days", "received_on",
    ("amount", "late_days", "on_time", "dated_amount", "dated_days", "max_days_late"),
    """SELECT customer_id, received_on, sum(amount) AS amount,
        sum(amount * (received_on - due_on)) AS late_days,
        sum(CASE WHEN received_on <= due_on THEN amount ELSE 0 END) AS on_time,
        sum(CASE WHEN issued_on IS NOT NULL THEN amount ELSE 0 END) AS dated_amount,
        sum(CASE WHEN issued_on IS NOT NULL THEN amount * (received_on - issued_on)
            ELSE 0 END) AS dated_days,
        max(received_on - due_on) AS max_days_late
    FROM payment_applications {where} GROUP BY customer_id, received_on""")
# Invoiced sales: posted invoices only (snapshot items are not sales), on their issued_on,
# else the UTC day they were posted.
INVOICED_DAYS = Buckets(
    "invoiced_days", "invoiced_on", ("amount",),
    """SELECT customer_id, invoiced_on, sum(amount) AS amount FROM (
        SELECT customer_id, amount,
            COALESCE(issued_on, (created_at AT TIME ZONE 'UTC')::date) AS invoiced_on
        FROM open_items WHERE origin = 'invoice') invoices
    {where} GROUP BY customer_id, invoiced_on""")


async def _bucket_drift(conn: AsyncConnection, buckets: Buckets) -> list[Drift]:
    cols = buckets.columns
    differs = " OR ".join(f"m.{c} IS DISTINCT FROM r.{c}" for c in cols)
    sql = f"""SELECT COALESCE(m.customer_id, r.customer_id) AS customer_id,
            COALESCE(m.{buckets.day}, r.{buckets.day}) AS day,
            {", ".join(f"m.{c} AS m_{c}, r.{c} AS r_{c}" for c in cols)}
        FROM {buckets.table} m FULL JOIN ({buckets.recompute.format(where="")}) r
            ON r.customer_id = m.customer_id AND r.{buckets.day} = m.{buckets.day}
        WHERE {differs} ORDER BY 1, 2"""
    drift = []
    for row in (await conn.execute(text(sql))).mappings():
        for c in cols:
            maintained, recomputed = row[f"m_{c}"], row[f"r_{c}"]
            if maintained != recomputed:
                drift.append(Drift(row["customer_id"], f"{buckets.table} {row['day']} {c}",
                                   maintained, recomputed))
    return drift


_INDEX_INPUTS = text("""SELECT a.customer_id, a.payment_index, w.amount, w.late_days,
        o.overdue, o.overdue_days
    FROM accounts a
    LEFT JOIN (SELECT customer_id, sum(amount) AS amount,
            sum(amount * (received_on - due_on)) AS late_days
        FROM payment_applications WHERE received_on BETWEEN :start AND :today
        GROUP BY customer_id) w ON w.customer_id = a.customer_id
    LEFT JOIN (SELECT customer_id, sum(open_amount) AS overdue,
            sum(open_amount * (CAST(:today AS date) - due_on)) AS overdue_days
        FROM open_items WHERE open_amount > 0 AND due_on < :today
        GROUP BY customer_id) o ON o.customer_id = a.customer_id
    ORDER BY a.customer_id""")


async def _payment_index_drift(conn: AsyncConnection, today: dt.date) -> list[Drift]:
    drift = []
    rows = await conn.execute(_INDEX_INPUTS, {"start": b.window_start(today), "today": today})
    for row in rows:
        applied = b.Applied(amount=Decimal(row.amount or 0),
                            late_days=Decimal(row.late_days or 0))
        open_ = b.OpenFacts(overdue=Decimal(row.overdue or 0),
                            overdue_days=Decimal(row.overdue_days or 0))
        value = b.payment_index(b.days_beyond_terms(applied, open_))
        if value != row.payment_index:
            drift.append(Drift(row.customer_id, "payment_index", row.payment_index, value))
    return drift


# ------------------------------------------------------------------ credit groups (2.6)

GROUP_AGGREGATES = ("open_receivables", "open_orders", "member_count")
# A group's figures are its members' maintained ones summed (those are checked against the
# line items above); one statement, so both sides are read as of one moment.
_GROUP_SUMS = """SELECT g.group_id, g.open_receivables, g.open_orders, g.member_count,
        COALESCE(sum(a.open_receivables), 0) AS r_open_receivables,
        COALESCE(sum(a.open_orders), 0) AS r_open_orders,
        count(a.customer_id) AS r_member_count
    FROM credit_groups g LEFT JOIN accounts a ON a.group_id = g.group_id
    {where} GROUP BY g.group_id ORDER BY g.group_id"""


async def _group_drift(conn: AsyncConnection) -> list[Drift]:
    drift = []
    for row in (await conn.execute(text(_GROUP_SUMS.format(where="")))).mappings():
        for name in GROUP_AGGREGATES:
            if row[name] != row[f"r_{name}"]:
                drift.append(Drift(row["group_id"], f"group {name}", row[name],
                                   row[f"r_{name}"]))
    return drift


async def _repair_group(conn: AsyncConnection, group_id: str) -> None:
    """Set the group's figures to its members' sums as they are now: after the accounts'
    repairs, which the trigger has already carried into the group. The group row is locked
    first, which holds off every writer of a member (they lock it before the account)."""
    await conn.execute(text("SELECT 1 FROM credit_groups WHERE group_id = :g FOR UPDATE"),
                       {"g": group_id})
    sums = (await conn.execute(text(_GROUP_SUMS.format(where="WHERE g.group_id = :g")),
                               {"g": group_id})).mappings().one()
    await conn.execute(text("UPDATE credit_groups SET open_receivables = :r, open_orders = :o, "
                            "member_count = :n WHERE group_id = :g"),
                       {"r": sums["r_open_receivables"], "o": sums["r_open_orders"],
                        "n": sums["r_member_count"], "g": group_id})


async def _rebuild(conn: AsyncConnection, buckets: Buckets, customer_ids: set[str]) -> None:
    """Replace the customers' buckets with their recomputation."""
    ids = {"ids": sorted(customer_ids)}
    await conn.execute(text(f"DELETE FROM {buckets.table} WHERE customer_id = ANY(:ids)"), ids)
    cols = ", ".join(("customer_id", buckets.day, *buckets.columns))
    recompute = buckets.recompute.format(where="WHERE customer_id = ANY(:ids)")
    await conn.execute(text(f"INSERT INTO {buckets.table} ({cols}) {recompute}"), ids)


async def repair(conn: AsyncConnection, drift: list[Drift]) -> int:
    """Set drifted aggregates to their recomputed values, the accounts' before the groups';
    returns how many were fixed."""
    fixed = 0
    # The lock order of every writer: the groups of the customers repaired, then accounts.
    groups = [d for d in drift if d.aggregate.startswith("group ")]
    await lock_groups_of(conn, [d.customer_id for d in drift if d not in groups],
                         [d.customer_id for d in groups])  # Drift.customer_id: the group
    for buckets in (PAYMENT_DAYS, INVOICED_DAYS):
        mine = [d for d in drift if d.aggregate.startswith(buckets.table + " ")]
        if mine:
            await _rebuild(conn, buckets, {d.customer_id for d in mine})
            fixed += len(mine)
    for d in drift:
        if d.aggregate == "payment_index":
            assert d.recomputed is None or isinstance(d.recomputed, int)
            await set_payment_index(conn, d.customer_id, d.recomputed)
            fixed += 1
        if d.aggregate in AGGREGATES:
            await lock_account(conn, d.customer_id)  # its group first: the trigger writes it
            await conn.execute(update(accounts).where(accounts.c.customer_id == d.customer_id)
                               .values({d.aggregate: d.recomputed}))
            touch(d.customer_id)
            fixed += 1
    for group_id in sorted({d.customer_id for d in groups}):
        await _repair_group(conn, group_id)
    return fixed + len(groups)
