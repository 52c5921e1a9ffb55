"""Automatic release: when headroom is freed, held orders that now pass become approved."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.entries import Event, decision_entry
from app.credit.policy import Exposure, ReasonCode, release_decision
from app.credit.schemas import DecisionOut, render_decision
from app.credit.state import load_locked
from app.customers.repository import add_entries, apply_deltas
from app.ids import new_id
from app.money import ZERO
from app.orders.models import Status
from app.orders.repository import held_orders, update_order

Decided = list[tuple[DecisionOut, str | None]]


async def auto_release(conn: AsyncConnection, customer_id: str, *, today: dt.date,
                       now: dt.datetime, ttl_days: int) -> Decided:
    """Re-evaluate the customer's held orders oldest first, in the caller's locked transaction.

    Returns the decisions it made, each with its order's channel (for metrics).
    """
    state = await load_locked(conn, customer_id, today)
    if state is None or state.account.held_count == 0:
        return []
    exposure = state.account.exposure
    entries: list[dict[str, Any]] = []
    decided: Decided = []
    released = held_off = ZERO
    for order in await held_orders(conn, customer_id):
        # What an invoice already took into receivables is not reserved a second time.
        remaining = order.amount - order.invoiced
        decision = state.evaluate(remaining, today, exposure=exposure)
        if not decision.approved:
            continue
        expires_at = now + dt.timedelta(days=ttl_days)
        release = release_decision(
            ReasonCode.AUTO_RELEASE, decision.effective_limit,
            "headroom was freed and the order now passes every rule")
        entry = decision_entry(
            entry_id=new_id(), at=now, event=Event.AUTO_RELEASE, actor="system",
            customer_id=customer_id, order_id=order.order_id, decision=release,
            amount=remaining, currency=order.currency, exposure=exposure,
            reserved=remaining, expires_at=expires_at)
        entries.append(entry)
        decided.append((render_decision(entry), order.channel))
        await update_order(conn, order, status=Status.APPROVED.value, reserved=remaining,
                           expires_at=expires_at, updated_at=now)
        exposure = Exposure(exposure.open_receivables, exposure.open_orders + remaining)
        released += remaining
        held_off += order.amount
    if entries:
        await apply_deltas(conn, customer_id, now, orders=released, held_amount=-held_off,
                           held_count=-len(entries))
        await add_entries(conn, entries)
    return decided
