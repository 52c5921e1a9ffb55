"""What the console reads that no API endpoint reads (the dashboard's roll-ups, the hold
queue's filters, aging buckets). Reads only: every change goes through the services."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, case, cast, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit_file.tables import credit_file
from app.customers.tables import accounts
from app.groups.tables import credit_groups
from app.money import ZERO
from app.orders.models import Status
from app.orders.tables import orders
from app.receivables.tables import open_items
from app.securities.repository import secured_sum

DASH = "\u2013"
AGING = (f"0{DASH}30", f"31{DASH}60", f"61{DASH}90", "90+")
HOLDS_SHOWN = 200


def effective_limit(today: dt.date) -> Any:
    """SQL for the effective limit: the limit, a temporary limit up to its last day, and the
    securities valid today (for ranking: app/securities/repository.secured_sum)."""
    a = accounts.c
    return a.credit_limit + secured_sum(a.customer_id, a.currency, today) + case(
        (and_(a.temp_limit_amount.is_not(None), a.temp_limit_expires_on >= today),
         a.temp_limit_amount), else_=literal(ZERO))


@dataclass
class Ranked:
    customer_id: str
    name: str
    currency: str
    exposure: Decimal
    limit: Decimal

    @property
    def utilisation(self) -> Decimal | None:
        return self.exposure / self.limit if self.limit > ZERO else None


@dataclass
class Dashboard:
    holds_open: int
    held_amount_by_currency: dict[str, Decimal]
    reviews_overdue: int
    reviews_due_14d: int
    over_80: int
    over_limit: int
    top_utilisation: list[Ranked]
    top_exposure: list[Ranked]
    over_limit_list: list[Ranked]


async def dashboard(conn: AsyncConnection, today: dt.date) -> Dashboard:
    a = accounts.c
    limit = effective_limit(today)
    exposure = a.open_receivables + a.open_orders
    base = select(a.customer_id, a.name, a.currency, exposure.label("exposure"),
                  limit.label("limit"))

    def ranked(rows: Any) -> list[Ranked]:
        return [Ranked(r.customer_id, r.name, r.currency, r.exposure, r.limit) for r in rows]

    held = await conn.execute(select(a.currency, func.sum(a.held_count), func.sum(a.held_amount))
                              .where(a.held_count > 0).group_by(a.currency))
    held_rows = list(held)
    ratio = cast(exposure, Numeric) / func.nullif(cast(limit, Numeric), 0)
    top_util = await conn.execute(base.where(limit > 0).order_by(ratio.desc(), a.customer_id)
                                  .limit(10))
    top_exp = await conn.execute(base.order_by(exposure.desc(), a.customer_id).limit(10))
    over_list = await conn.execute(base.where(exposure > limit).order_by(
        (exposure - limit).desc(), a.customer_id).limit(20))
    counts = (await conn.execute(select(
        func.count().filter(and_(a.review_due_on.is_not(None), a.review_due_on < today)),
        func.count().filter(and_(a.review_due_on.is_not(None),
                                 a.review_due_on <= today + dt.timedelta(days=14))),
        func.count().filter(and_(limit > 0, exposure > limit * Decimal("0.8"))),
        func.count().filter(exposure > limit),
    ))).one()
    return Dashboard(
        holds_open=sum(int(r[1]) for r in held_rows),
        held_amount_by_currency={r[0]: r[2] for r in held_rows},
        reviews_overdue=int(counts[0]), reviews_due_14d=int(counts[1]),
        over_80=int(counts[2]), over_limit=int(counts[3]),
        top_utilisation=ranked(top_util), top_exposure=ranked(top_exp),
        over_limit_list=ranked(over_list))


@dataclass
class HoldFilter:
    customer_id: str | None = None
    reason: str | None = None
    risk_class: str | None = None
    min_age_days: int | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None


@dataclass
class HeldRow:
    order_id: str
    customer_id: str
    name: str
    risk_class: str
    amount: Decimal
    currency: str
    created_at: dt.datetime
    reasons: list[dict[str, str]]

    def age_days(self, now: dt.datetime) -> int:
        return (now - self.created_at).days


async def holds(conn: AsyncConnection, f: HoldFilter, now: dt.datetime) -> list[HeldRow]:
    """The hold queue, oldest first, with each order's latest hold reasons and its class."""
    o, c = orders.c, credit_file.c
    latest = (select(c.reasons)
              .where(c.customer_id == o.customer_id, c.order_id == o.order_id,
                     c.outcome == "hold")
              .order_by(c.entry_id.desc()).limit(1).lateral("latest"))
    stmt = (select(o.order_id, o.customer_id, o.amount, o.currency, o.created_at,
                   accounts.c.name, accounts.c.risk_class, latest.c.reasons)
            .select_from(orders.join(accounts, accounts.c.customer_id == o.customer_id)
                         .outerjoin(latest, true()))
            .where(o.status == Status.HELD.value))
    if f.customer_id:
        stmt = stmt.where(o.customer_id == f.customer_id)
    if f.risk_class:
        stmt = stmt.where(accounts.c.risk_class == f.risk_class)
    if f.min_age_days is not None:
        stmt = stmt.where(o.created_at <= now - dt.timedelta(days=f.min_age_days))
    if f.min_amount is not None:
        stmt = stmt.where(o.amount >= f.min_amount)
    if f.max_amount is not None:
        stmt = stmt.where(o.amount <= f.max_amount)
    if f.reason:
        stmt = stmt.where(latest.c.reasons.contains([{"code": f.reason}]))
    stmt = stmt.order_by(o.created_at, o.order_id).limit(HOLDS_SHOWN)
    return [HeldRow(r.order_id, r.customer_id, r.name, r.risk_class, r.amount, r.currency,
                    r.created_at, list(r.reasons or []))
            for r in await conn.execute(stmt)]


async def aging(conn: AsyncConnection, customer_id: str, today: dt.date
                ) -> tuple[list[tuple[str, Decimal]], Decimal]:
    """Positive open items by days past due (today - due_on): 0-30 (which includes items not
    yet due), 31-60, 61-90, over 90; and the part not yet due."""
    i = open_items.c

    def total(cond: Any) -> Any:
        return func.coalesce(func.sum(i.open_amount).filter(cond), 0)

    d = dt.timedelta
    row = (await conn.execute(select(
        total(i.due_on >= today - d(days=30)),
        total(and_(i.due_on < today - d(days=30), i.due_on >= today - d(days=60))),
        total(and_(i.due_on < today - d(days=60), i.due_on >= today - d(days=90))),
        total(i.due_on < today - d(days=90)),
        total(i.due_on >= today),
    ).where(i.customer_id == customer_id, i.open_amount > 0))).one()
    buckets = [(name, Decimal(row[n])) for n, name in enumerate(AGING)]
    return buckets, Decimal(row[4])


@dataclass
class Group:
    """A credit group as the customer page shows it (groups have no temporary limits or
    securities: the effective limit is the credit limit)."""

    group_id: str
    name: str
    currency: str
    credit_limit: Decimal
    blocked: bool
    open_receivables: Decimal
    open_orders: Decimal

    @property
    def exposure(self) -> Decimal:
        return self.open_receivables + self.open_orders

    @property
    def available(self) -> Decimal:
        return self.credit_limit - self.exposure


async def group(conn: AsyncConnection, group_id: str) -> Group | None:
    g = credit_groups.c
    row = (await conn.execute(select(g.group_id, g.name, g.currency, g.credit_limit, g.blocked,
                                     g.open_receivables, g.open_orders)
                              .where(g.group_id == group_id))).first()
    return None if row is None else Group(*row)
