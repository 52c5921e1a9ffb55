"""Order lifecycle after the credit check. Every change locks the customer's account first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.credit.entries import DECISION_EVENTS, Event, decision_entry, event_entry
from app.credit.policy import Exposure, ReasonCode, release_decision
from app.credit.release import Decided, auto_release
from app.credit.schemas import DecisionOut, render_decision
from app.credit.state import CreditState, load_locked
from app.customers.repository import add_entries, apply_deltas, get_entry, order_entries
from app.db import Database
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.money import ZERO, format_amount
from app.orders.models import Order, Status
from app.orders.repository import expired_reservations, get_order, update_order
from app.orders.schemas import OrderOut


@dataclass
class Change:
    """What an order operation did: the order now, the decision it made, what to count."""

    order: OrderOut
    decision: DecisionOut | None = None
    replayed: bool = False
    decided: Decided | None = None


async def render_order(conn: AsyncConnection, order: Order) -> OrderOut:
    entries = await order_entries(conn, order.customer_id, order.order_id)
    decisions = [render_decision(e) for e in entries if e["event"] in DECISION_EVENTS]
    return OrderOut(
        order_id=order.order_id, customer_id=order.customer_id, status=order.status.value,
        amount=order.amount, currency=order.currency, channel=order.channel,
        reserved=order.reserved, invoiced=order.invoiced, released=order.released,
        expires_at=order.expires_at, created_at=order.created_at, updated_at=order.updated_at,
        decisions=decisions)


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


async def _refreshed(conn: AsyncConnection, order: Order) -> OrderOut:
    fresh = await get_order(conn, order.order_id)
    assert fresh is not None
    return await render_order(conn, fresh)


async def auto_release_decisions(conn: AsyncConnection, db: Database, customer_id: str,
                                 today: dt.date, now: dt.datetime) -> Decided:
    """The automatic release with this deployment's reservation lifetime."""
    return await auto_release(conn, customer_id, today=today, now=now,
                              ttl_days=db.settings.reservation_ttl_days)


async def amend(db: Database, order_id: str, new_amount: Decimal, caller: Caller) -> Change:
    """A decrease releases the difference; an increase is checked like a new order for it."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        order, state = await _lock(conn, order_id, today)
        if order.status is not Status.APPROVED:
            raise _wrong_state(order, "amended")
        state = _needs_account(state, order)
        if new_amount < order.invoiced:
            raise Conflict(f"{order_id} is already invoiced for {order.invoiced}; the amount "
                           "cannot go below that", code="amount_below_invoiced")
        if new_amount == order.amount:
            return Change(await render_order(conn, order))
        if new_amount < order.amount:
            return await _decrease(conn, db, order, new_amount, caller, today, now)
        return await _increase(conn, order, state, new_amount, caller, today, now)


async def _decrease(conn: AsyncConnection, db: Database, order: Order, new_amount: Decimal,
                    caller: Caller, today: dt.date, now: dt.datetime) -> Change:
    freed = min(order.amount - new_amount, order.reserved)
    reserved = order.reserved - freed
    done = reserved == ZERO and order.invoiced >= new_amount
    await update_order(conn, order, amount=new_amount, reserved=reserved, updated_at=now,
                       **({"status": Status.INVOICED.value, "expires_at": None} if done else {}))
    await apply_deltas(conn, order.customer_id, now, orders=-freed)
    await add_entries(conn, [event_entry(
        entry_id=new_id(), at=now, event=Event.AMOUNT_DECREASED, actor=caller.name,
        customer_id=order.customer_id, order_id=order.order_id,
        details={"old_amount": format_amount(order.amount), "new_amount": format_amount(new_amount),
                 "released": format_amount(freed)})])
    decided = await auto_release_decisions(conn, db, order.customer_id, today, now)
    return Change(await _refreshed(conn, order), decided=decided)


async def _increase(conn: AsyncConnection, order: Order, state: CreditState,
                    new_amount: Decimal, caller: Caller, today: dt.date, now: dt.datetime
                    ) -> Change:
    diff = new_amount - order.amount
    decision = state.evaluate(diff, today)
    reserve = diff if decision.approved else ZERO
    entry = decision_entry(
        entry_id=new_id(), at=now, event=Event.AMENDMENT, actor=caller.name,
        customer_id=order.customer_id, order_id=order.order_id, decision=decision,
        amount=diff, currency=order.currency, exposure=state.account.exposure,
        reserved=reserve, expires_at=order.expires_at if decision.approved else None)
    await add_entries(conn, [entry])
    if decision.approved:
        await update_order(conn, order, amount=new_amount, reserved=order.reserved + diff,
                           updated_at=now)
        await apply_deltas(conn, order.customer_id, now, orders=diff)
    rendered = render_decision(entry)
    return Change(await _refreshed(conn, order), rendered, decided=[(rendered, order.channel)])


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
        current = state.account.exposure
        others = Exposure(current.open_receivables, current.open_orders - order.reserved)
        decision = state.evaluate(order.reserved, today, exposure=others,
                                  limit_rules=not order.released)
        entry = decision_entry(
            entry_id=new_id(), at=now, event=Event.DISPATCH_CHECK, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, decision=decision,
            amount=order.reserved, currency=order.currency, exposure=current, reserved=ZERO)
        await add_entries(conn, [entry])
        if decision.approved:
            await update_order(conn, order, status=Status.SHIPPED.value,
                               dispatch_decision_id=entry["entry_id"], expires_at=None,
                               updated_at=now)
        rendered = render_decision(entry)
        return Change(await _refreshed(conn, order), rendered,
                      decided=[(rendered, order.channel)])


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
                               held_amount=-order.amount if held else ZERO,
                               held_count=-1 if held else 0)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=Event.ORDER_CANCELLED, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, note=reason,
            details={"old_status": order.status.value, "released": format_amount(order.reserved)})])
        decided = []
        if state is not None and order.reserved > ZERO:
            decided = await auto_release_decisions(conn, db, order.customer_id, today, now)
        return Change(await _refreshed(conn, order), decided=decided)


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
        expires_at = now + dt.timedelta(days=db.settings.reservation_ttl_days)
        decision = release_decision(ReasonCode.MANUAL_RELEASE,
                                    state.account.effective_limit(today),
                                    f"released by {caller.name}: {reason}")
        remaining = order.amount - order.invoiced  # an invoice may have taken part already
        entry = decision_entry(
            entry_id=new_id(), at=now, event=Event.MANUAL_RELEASE, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, decision=decision,
            amount=remaining, currency=order.currency, exposure=state.account.exposure,
            reserved=remaining, expires_at=expires_at, note=reason)
        await add_entries(conn, [entry])
        await update_order(conn, order, status=Status.APPROVED.value, released=True,
                           reserved=remaining, expires_at=expires_at, updated_at=now)
        await apply_deltas(conn, order.customer_id, now, orders=remaining,
                           held_amount=-order.amount, held_count=-1)
        rendered = render_decision(entry)
        return Change(await _refreshed(conn, order), rendered,
                      decided=[(rendered, order.channel)])


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
        await apply_deltas(conn, order.customer_id, now, held_amount=-order.amount,
                           held_count=-1)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=Event.ORDER_REJECTED, actor=caller.name,
            customer_id=order.customer_id, order_id=order_id, note=reason)])
        return Change(await _refreshed(conn, order))


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
                if state is not None:
                    run.decided += await auto_release_decisions(
                        conn, db, order.customer_id, today, now)
            run.expired += 1
        if len(due) < batch:
            return run
