"""SQL for credit groups. Their exposure columns belong to the trigger of migration 0012:
nothing here writes them, except reconcile's repair (app/reconcile.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.customers.tables import accounts
from app.groups.models import Group, Member
from app.groups.tables import credit_groups
from app.money import ZERO


async def get_group(conn: AsyncConnection, group_id: str, *, lock: bool = False
                    ) -> Group | None:
    """The group, optionally locked FOR UPDATE (before any member's account row)."""
    stmt = select(credit_groups).where(credit_groups.c.group_id == group_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    return Group.from_mapping(row) if row is not None else None


async def insert_group(conn: AsyncConnection, group_id: str, values: dict[str, Any],
                       now: dt.datetime) -> None:
    await conn.execute(insert(credit_groups).values(
        group_id=group_id, **values, open_receivables=ZERO, open_orders=ZERO, member_count=0,
        version=1, created_at=now, updated_at=now))


async def update_terms(conn: AsyncConnection, group_id: str, values: dict[str, Any],
                       now: dt.datetime) -> None:
    """Change terms; bumping version invalidates in-flight optimistic checks of members."""
    await conn.execute(
        update(credit_groups).where(credit_groups.c.group_id == group_id).values(
            **values, version=credit_groups.c.version + 1, updated_at=now))


async def member_ids(conn: AsyncConnection, group_id: str) -> list[str]:
    stmt = (select(accounts.c.customer_id).where(accounts.c.group_id == group_id)
            .order_by(accounts.c.customer_id))
    return list((await conn.execute(stmt)).scalars())


async def has_members_outside(conn: AsyncConnection, group_id: str, currency: str) -> bool:
    """Whether a member keeps its accounts in another currency than `currency`."""
    stmt = select(func.count()).where(accounts.c.group_id == group_id,
                                      accounts.c.currency != currency)
    return bool((await conn.execute(stmt)).scalar_one())


async def with_members(conn: AsyncConnection, group_id: str
                       ) -> tuple[Group, list[Member]] | None:
    """The group and its members' exposure, read in one statement (one snapshot), so the
    group's figures are the sums of the members' shown with them."""
    stmt = (select(credit_groups, accounts.c.customer_id.label("m_customer_id"),
                   accounts.c.open_receivables.label("m_open_receivables"),
                   accounts.c.open_orders.label("m_open_orders"))
            .select_from(credit_groups.outerjoin(
                accounts, accounts.c.group_id == credit_groups.c.group_id))
            .where(credit_groups.c.group_id == group_id)
            .order_by(accounts.c.customer_id))
    rows = (await conn.execute(stmt)).mappings().all()
    if not rows:
        return None
    members = [Member(r["m_customer_id"], r["m_open_receivables"], r["m_open_orders"])
               for r in rows if r["m_customer_id"] is not None]
    return Group.from_mapping(rows[0]), members
