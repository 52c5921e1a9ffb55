"""Workflows that cross domains: each runs inside the caller's transaction, under the
customer's account row lock (and its credit group's), and touches each table through its
owner's repository."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.plans import CreditState, HeldOrder, group_release_plan, reservation_expiry
from app.credit.repository import load_locked
from app.credit_file.entries import Event, decision_entry, decision_group
from app.credit_file.repository import add_entries
from app.customers.repository import apply_deltas, members_holding
from app.events.outbox import emit
from app.events.types import EventType
from app.groups.repository import get_group
from app.ids import new_id
from app.metrics import Decided
from app.orders.models import Status
from app.orders.render import refreshed
from app.orders.repository import held_orders, update_order


async def auto_release(conn: AsyncConnection, customer_id: str, *, today: dt.date,
                       now: dt.datetime, ttl_days: int) -> Decided:
    """Approve the customer's held orders that pass every rule now, oldest first; for a
    member of a credit group, those of every member (the headroom freed may be the group's).

    Called by every change that frees headroom (payment, snapshot, limit increase, unblock,
    cancel, decrease, expiry); returns the decisions made, with their orders' channels.
    """
    state = await load_locked(conn, customer_id, today)
    if state is None:
        return []
    if state.group is not None:
        return await auto_release_group(conn, state.group.group_id, today=today, now=now,
                                        ttl_days=ttl_days)
    if state.account.held_count == 0:
        return []
    return await _release(conn, {customer_id: state}, today=today, now=now, ttl_days=ttl_days)


async def auto_release_group(conn: AsyncConnection, group_id: str, *, today: dt.date,
                             now: dt.datetime, ttl_days: int) -> Decided:
    """Headroom freed on a group (a member's change, a higher group limit, an unblock, a member
    leaving): every member's held orders that now pass, oldest first across the members."""
    if await get_group(conn, group_id, lock=True) is None:
        return []
    states: dict[str, CreditState] = {}
    for member in await members_holding(conn, group_id):
        state = await load_locked(conn, member, today)  # group held first: the lock order
        if state is not None and state.group is not None and state.group.group_id == group_id:
            states[member] = state
    if not states:
        return []
    return await _release(conn, states, today=today, now=now, ttl_days=ttl_days)


async def _release(conn: AsyncConnection, states: dict[str, CreditState], *, today: dt.date,
                   now: dt.datetime, ttl_days: int) -> Decided:
    orders = {o.order_id: o for o in await held_orders(conn, *states)}
    held = [HeldOrder(o.order_id, o.converted_amount, o.invoiced, o.channel, o.customer_id)
            for o in orders.values()]
    releases = group_release_plan(states, held, today)
    if not releases:
        return []
    expires_at = reservation_expiry(now, ttl_days)
    entries = []
    for release in releases:
        remaining, customer_id = release.order.remaining, release.order.customer_id
        state = states[customer_id]
        entries.append(decision_entry(
            entry_id=new_id(), at=now, event=Event.AUTO_RELEASE, actor="system",
            customer_id=customer_id, order_id=release.order.order_id,
            decision=release.decision, amount=remaining, currency=state.account.currency,
            exposure=release.exposure, reserved=remaining, expires_at=expires_at,
            payment_index=state.account.payment_index,
            group=decision_group(release.group, remaining)))
        await update_order(conn, orders[release.order.order_id], status=Status.APPROVED.value,
                           reserved=remaining, expires_at=expires_at, updated_at=now)
        await apply_deltas(conn, customer_id, now, orders=remaining,
                           held_amount=-release.order.amount, held_count=-1)
    await add_entries(conn, entries)
    for release in releases:
        await emit(conn, EventType.ORDER_RELEASED,
                   await refreshed(conn, orders[release.order.order_id]),
                   customer_id=release.order.customer_id, now=now)
    return [(r.decision, r.order.channel) for r in releases]
