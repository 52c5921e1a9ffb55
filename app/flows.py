"""Workflows that cross domains: each runs inside the caller's transaction, under the
customer's account row lock, and touches each table through its owner's repository."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.plans import HeldOrder, auto_release_plan, reservation_expiry
from app.credit.repository import load_locked
from app.credit_file.entries import Event, decision_entry
from app.credit_file.repository import add_entries
from app.customers.repository import apply_deltas
from app.events.outbox import emit
from app.events.types import EventType
from app.ids import new_id
from app.metrics import Decided
from app.money import ZERO
from app.orders.models import Status
from app.orders.render import refreshed
from app.orders.repository import held_orders, update_order


async def auto_release(conn: AsyncConnection, customer_id: str, *, today: dt.date,
                       now: dt.datetime, ttl_days: int) -> Decided:
    """Approve the customer's held orders that pass every rule now, oldest first.

    Called by every change that frees headroom (payment, snapshot, limit increase, unblock,
    cancel, decrease, expiry); returns the decisions made, with their orders' channels.
    """
    state = await load_locked(conn, customer_id, today)
    if state is None or state.account.held_count == 0:
        return []
    orders = {o.order_id: o for o in await held_orders(conn, customer_id)}
    held = [HeldOrder(o.order_id, o.amount, o.invoiced, o.currency, o.channel)
            for o in orders.values()]
    releases = auto_release_plan(state, held, today)
    if not releases:
        return []
    expires_at = reservation_expiry(now, ttl_days)
    entries = []
    released = held_off = ZERO
    for release in releases:
        remaining = release.order.remaining
        entries.append(decision_entry(
            entry_id=new_id(), at=now, event=Event.AUTO_RELEASE, actor="system",
            customer_id=customer_id, order_id=release.order.order_id,
            decision=release.decision, amount=remaining, currency=release.order.currency,
            exposure=release.exposure, reserved=remaining, expires_at=expires_at,
            payment_index=state.account.payment_index))
        await update_order(conn, orders[release.order.order_id], status=Status.APPROVED.value,
                           reserved=remaining, expires_at=expires_at, updated_at=now)
        released += remaining
        held_off += release.order.amount
    await apply_deltas(conn, customer_id, now, orders=released, held_amount=-held_off,
                       held_count=-len(releases))
    await add_entries(conn, entries)
    for release in releases:
        await emit(conn, EventType.ORDER_RELEASED,
                   await refreshed(conn, orders[release.order.order_id]),
                   customer_id=customer_id, now=now)
    return [(r.decision, r.order.channel) for r in releases]
