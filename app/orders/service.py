"""Order lifecycle after the credit check. Every change locks the customer's account first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.credit.plans import (
    CreditState,
    Decrease,
    amendment,
    decision_inputs,
    dispatch_decision,
    manual_release,
    reservation_expiry,
)
from app.credit.repository import load_locked
from app.credit.schemas import DecisionOut, render_decision
from app.credit_file.entries import Event, decision_entry, decision_group, event_entry
from app.credit_file.repository import add_entries, get_entry
from app.customers.repository import apply_deltas
from app.db.engine import Database
from app.errors import Conflict, NotFound
from app.events.outbox import emit
from app.events.types import EventType
from app.flows import auto_release
from app.fx.convert import convert
from app.ids import new_id
from app.metrics import Decided
from app.money import ZERO, format_amount
from app.monitoring.service import evaluate
from app.orders.models import Order, Status
from app.orders.render import refreshed, render_order
from app.orders.repository import expired_reservations, get_order, update_order
from app.orders.schemas import OrderOut


@dataclass
class Change:
    """What an order operation did: the order now, the decision it made, what to count."""

    order: OrderOut
    decision: DecisionOut | None = None
    replayed: bool = False
    decided: Decided | None = None


async def read_order(db: Database, order_id: str) -> OrderOut:
    async with db.autocommit() as conn:
        order = await get_order(conn, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}", code="order_not_found")
        return await render_order(conn, order)


async def _lock(conn: AsyncConnection, order_id: str, today: dt.date
                ) -> tuple[Order, CreditState | None]:
    """Lock the order's account, then read the order as it is under that lock."""
    first = await get_order(conn, order_id)
    if first is None:
        raise NotFound(f"no order {order_id}", code="order_not_found")
    state = await load_locked(conn, first.customer_id, today)
    order = await get_order(conn, order_id)
    assert order is not None
    return order, state


def _needs_account(state: CreditState | None, order: Order) -> CreditState:
    if state is None:
        raise Conflict(f"order {order.order_id} belongs to no credit account",
                       code="invalid_state")
    return state


def _wrong_state(order: Order, action: str) -> Conflict:
    return Conflict(f"order {order.order_id} is {order.status.value}; it cannot be {action}",
                    code="invalid_state")


async def amend(db: Database, order_id: str, new_amount: Decimal, caller: Caller) -> Change:
    """A decrease releases the difference; an increase is checked like a new order for it."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        order, state = await _lock(conn, order_id, today)
        if order.status is not Status.APPROVED:
            raise _wrong_state(order, "amended")
        state = _needs_account(state, order)
        # Reservations and invoices are in the account's currency: the new amount counts at
        # the rate the order was checked at, so a decrease frees exactly its share.
        converted = new_amount if order.fx_rate is None else convert(new_amount, order.fx_rate)
        if converted < order.invoiced:
            raise Conflict(f"{order_id} is already invoiced for {order.invoiced}; the amount "
                           "cannot go below that", code="amount_below_invoiced")
        if new_amount == order.amount:
            return Change(await render_order(conn, order))
        change = amendment(order.converted_amount, converted, order.reserved, order.invoiced)
        if change is None:  # the same in the account's currency: only the document moves
            await update_order(conn, order, amount=new_amount, updated_at=now)
            return Change(await refreshed(conn, order))
        if isinstance(change, Decrease):
            return await _decrease(conn, db, order, new_amount, converted, change, caller,
                                   today, now)
        return await _increase(conn, order, state, new_amount, converted, caller, today, now)


async def _decrease(conn: AsyncConnection, db: Database, order: Order, new_amount: Decimal,
                    converted: Decimal, change: Decrease, caller: Caller, today: dt.date,
                    now: dt.datetime) -> Change:
    done = {"status": Status.INVOICED.value, "expires_at": None} if change.invoiced_in_full else {}
    await update_order(conn, order, amount=new_amount, converted_amount=converted,
                       reserved=change.reserved, updated_at=now, **done)
    await apply_deltas(conn, order.customer_id, now, orders=-change.freed)
    await add_entries(conn, [event_entry(
        entry_id=new_id(), at=now, event=Event.AMOUNT_DECREASED, actor=caller.name,
        customer_id=order.customer_id, order_id=order.order_id,
        details={"old_amount": format_amount(order.amount), "new_amount": format_amount(new_amount),
                 "released": format_amount(change.freed)})])
    decided = await auto_release(conn, order.customer_id, today=today, now=now,
                                 ttl_days=db.settings.reservation_ttl_days)
    await evaluate(conn, order.customer_id, today=today, now=now)
    return Change(await refreshed(conn, order), decided=decided)


async def _increase(conn: AsyncConnection, order: Order, state: CreditState,
                    new_amount: Decimal, converted: Decimal, caller: Caller, today: dt.date,
                    now: dt.datetime) -> Change:
    diff = converted - order.converted_amount
    decision = state.evaluate(diff, today, order_total=converted)
    reserve = diff if decision.approved else ZERO
    entry = decision_entry(
        entry_id=new_id(), at=now, event=Event.AMENDMENT, actor=caller.name,
        customer_id=order.customer_id, order_id=order.order_id, decision=decision,
        amount=new_amount - order.amount, currency=order.currency, exposure=state.account.exposure,
        reserved=reserve, expires_at=order.expires_at if decision.approved else None,
        payment_index=state.account.payment_index, inputs=decision_inputs(state, today),
        converted_amount=diff, fx_rate=order.fx_rate, group=decision_group(state.group, reserve))
    await add_entries(conn, [entry])
    if decision.approved:
        await update_order(conn, order, amount=new_amount, converted_amount=converted,
                           reserved=order.reserved + diff, updated_at=now)
        await apply_deltas(conn, order.customer_id, now, orders=diff)
    await evaluate(conn, order.customer_id, today=today, now=now)
    return Change(await refreshed(conn, order), render_decision(entry),
                  decided=[(decision, order.channel)])


async def dispatch(db: Database, order_id: str, caller: Caller) -> Change:
    """Re-evaluate every rule now, with the order's own reservation counted once."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        order, state = await _lock(conn, order_id, today)
        if order.status is Status.SHIPPED and order.dispatch_decision_id is not None:
            entry = await get_entry(conn, order.customer_id, order.dispatch_decision_id)
            return Change(await render_order(conn, order), render_decision(entry),
                          replayed=True)
        if order.status is not Status.APPROVED:
            raise Conflict(f"order {order_id} is {order.status.value}; only approved orders "
                           "can be dispatched", code="not_dispatchable")
        state = _needs_account(state, order)
        decision = dispatch_decision(state, order.reserved, order.converted_amount,
                                     order.released, today)
        entry = decision_entry(
            entry_id=new_id(), at=now, event=Event.DISPATCH_CHECK, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, decision=decision,
            amount=order.reserved, currency=state.account.currency,
            exposure=state.account.exposure, reserved=ZERO,
            payment_index=state.account.payment_index, inputs=decision_inputs(state, today),
            group=decision_group(state.group, ZERO))
        await add_entries(conn, [entry])
        if decision.approved:
            await update_order(conn, order, status=Status.SHIPPED.value,
                               dispatch_decision_id=entry["entry_id"], expires_at=None,
                               updated_at=now)
        await evaluate(conn, order.customer_id, today=today, now=now)
        return Change(await refreshed(conn, order), render_decision(entry),
                      decided=[(decision, order.channel)])


async def cancel(db: Database, order_id: str, caller: Caller, reason: str | None) -> Change:
    """Release whatever the order holds; cancelling a cancelled order changes nothing."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        order, state = await _lock(conn, order_id, today)
        if order.status is Status.CANCELLED:
            return Change(await render_order(conn, order), replayed=True)
        if order.status not in (Status.APPROVED, Status.HELD, Status.PREPAY):
            raise _wrong_state(order, "cancelled")
        await update_order(conn, order, status=Status.CANCELLED.value, reserved=ZERO,
                           expires_at=None, updated_at=now)
        if state is not None:
            held = order.status is Status.HELD
            await apply_deltas(conn, order.customer_id, now, orders=-order.reserved,
                               held_amount=-order.converted_amount if held else ZERO,
                               held_count=-1 if held else 0)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=Event.ORDER_CANCELLED, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, note=reason,
            details={"old_status": order.status.value, "released": format_amount(order.reserved)})])
        decided = []
        if state is not None and order.reserved > ZERO:
            decided = await auto_release(conn, order.customer_id, today=today, now=now,
                                 ttl_days=db.settings.reservation_ttl_days)
        await evaluate(conn, order.customer_id, today=today, now=now)
        return Change(await refreshed(conn, order), decided=decided)


async def release(db: Database, order_id: str, caller: Caller, reason: str) -> Change:
    """A controller approves a held order, reserving it even beyond the limit."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        order, state = await _lock(conn, order_id, today)
        if order.status is Status.APPROVED and order.released:
            return Change(await render_order(conn, order), replayed=True)
        if order.status is not Status.HELD:
            raise _wrong_state(order, "released")
        state = _needs_account(state, order)
        expires_at = reservation_expiry(now, db.settings.reservation_ttl_days)
        decision = manual_release(state, caller.name, reason, today)
        # An invoice may have taken part already (in the account's currency, like this).
        remaining = order.converted_amount - order.invoiced
        entry = decision_entry(
            entry_id=new_id(), at=now, event=Event.MANUAL_RELEASE, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, decision=decision,
            amount=remaining, currency=state.account.currency, exposure=state.account.exposure,
            reserved=remaining, expires_at=expires_at, note=reason,
            payment_index=state.account.payment_index,
            group=decision_group(state.group, remaining))
        await add_entries(conn, [entry])
        await update_order(conn, order, status=Status.APPROVED.value, released=True,
                           reserved=remaining, expires_at=expires_at, updated_at=now)
        await apply_deltas(conn, order.customer_id, now, orders=remaining,
                           held_amount=-order.converted_amount, held_count=-1)
        now_order = await refreshed(conn, order)
        await emit(conn, EventType.ORDER_RELEASED, now_order, customer_id=order.customer_id,
                   now=now)
        await evaluate(conn, order.customer_id, today=today, now=now)
        return Change(now_order, render_decision(entry), decided=[(decision, order.channel)])


async def reject(db: Database, order_id: str, caller: Caller, reason: str) -> Change:
    """A controller turns a held order down; it reserves nothing and leaves the hold queue."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        order, _state = await _lock(conn, order_id, today)
        if order.status is Status.REJECTED:
            return Change(await render_order(conn, order), replayed=True)
        if order.status is not Status.HELD:
            raise _wrong_state(order, "rejected")
        await update_order(conn, order, status=Status.REJECTED.value, updated_at=now)
        await apply_deltas(conn, order.customer_id, now, held_amount=-order.converted_amount,
                           held_count=-1)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=Event.ORDER_REJECTED, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, note=reason)])
        now_order = await refreshed(conn, order)
        await emit(conn, EventType.ORDER_REJECTED, now_order, customer_id=order.customer_id,
                   now=now)
        await evaluate(conn, order.customer_id, today=today, now=now)
        return Change(now_order)


@dataclass
class ExpiryRun:
    expired: int
    decided: Decided


async def expire_reservations(db: Database, now: dt.datetime | None = None,
                              batch: int = 500) -> ExpiryRun:
    """Expire approved orders whose reservation lapsed, releasing what they reserved."""
    now = now or clock.now()
    today = now.date()
    run = ExpiryRun(0, [])
    while True:
        async with db.autocommit() as conn:
            due = await expired_reservations(conn, now, batch)
        for _customer_id, order_id in due:
            async with db.begin() as conn:
                order, state = await _lock(conn, order_id, today)
                if (order.status is not Status.APPROVED or order.expires_at is None
                        or order.expires_at > now):
                    continue
                await update_order(conn, order, status=Status.EXPIRED.value, reserved=ZERO,
                                   updated_at=now)
                await apply_deltas(conn, order.customer_id, now, orders=-order.reserved)
                await add_entries(conn, [event_entry(
                    entry_id=new_id(), at=now, event=Event.ORDER_EXPIRED, actor="system",
                    customer_id=order.customer_id, order_id=order_id,
                    details={"released": format_amount(order.reserved),
                             "expired_at": order.expires_at.isoformat()})])
                await emit(conn, EventType.ORDER_EXPIRED, await refreshed(conn, order),
                           customer_id=order.customer_id, now=now)
                if state is not None:
                    run.decided += await auto_release(
                        conn, order.customer_id, today=today, now=now,
                        ttl_days=db.settings.reservation_ttl_days)
                await evaluate(conn, order.customer_id, today=today, now=now)
            run.expired += 1
        if len(due) < batch:
            return run
