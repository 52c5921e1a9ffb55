"""The reserving credit check: read -> decide -> guarded write, replay-safe."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from asyncpg import UniqueViolationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.credit import pg as pg_sql
from app.credit import state as credit_state
from app.credit.entries import Event, decision_entry
from app.credit.policy import Decision, Exposure, Outcome, unknown_customer
from app.credit.schemas import CreditCheckIn, DecisionOut, render_decision
from app.credit.state import CreditState, ExistingOrder
from app.credit.writer import CheckWrite, Guard, Written, write_check, write_unknown_customer
from app.customers.repository import get_entry
from app.db import Database, touch
from app.errors import Conflict, Unprocessable, is_database_unavailable
from app.ids import new_id
from app.money import ZERO
from app.orders.models import Order, Status
from app.orders.repository import get_order

_STATUS_OF = {Outcome.APPROVE: Status.APPROVED, Outcome.HOLD: Status.HELD,
              Outcome.PREPAY: Status.PREPAY}


@dataclass(frozen=True)
class CheckResult:
    decision: DecisionOut
    replayed: bool
    channel: str | None


def expiry(now: dt.datetime, ttl_days: int) -> dt.datetime:
    return now + dt.timedelta(days=ttl_days)


async def check_credit(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult:
    """Decide an order; an approval reserves its amount. Replays return the stored decision."""
    try:
        return await _check(db, req, caller)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        # A pooled connection died with the database's last outage (the pool renews all of
        # them now). Checks are idempotent by order_id, so one more try is safe: a decision
        # that did land is found and replayed.
        return await _check(db, req, caller)


async def _check(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult:
    if req.dry_run:
        return await _dry_run(db, req, caller)
    if db.is_sqlite:
        return await _serialised(db, req, caller)
    return await _optimistic(db, req, caller) or await _locked(db, req, caller)


async def _dry_run(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult:
    today, now = clock.today(), clock.now()
    state = await credit_state.read_state(db, req.customer_id, today)
    write = _plan(state, req, caller, now, today, db.settings.reservation_ttl_days, guard=False)
    return CheckResult(render_decision(write.entry, dry_run=True), False, req.channel)


async def _optimistic(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult | None:
    """PostgreSQL, two round trips and no lock held while deciding; None if the guard failed."""
    today, now = clock.today(), clock.now()
    written = None
    try:
        async with db.driver() as pg:
            state, existing = await pg_sql.snapshot(pg, req.customer_id, req.order_id, today)
            if existing is None and state is not None:
                write = _plan(state, req, caller, now, today,
                              db.settings.reservation_ttl_days, guard=True)
                touch(req.customer_id)
                written = await pg_sql.write(pg, write)
    except UniqueViolationError as exc:
        return await _replay_after_race(db, req, exc)
    if existing is not None:
        return await _replay_of(db, existing, req)
    if written is None:
        return None
    return CheckResult(render_decision(_actual(write, written)), False, req.channel)


async def _locked(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult:
    """PostgreSQL, serialised: lock the account row, then decide and write."""
    today, now = clock.today(), clock.now()
    try:
        async with db.driver() as pg, pg.transaction():
            state, existing = await pg_sql.locked(pg, req.customer_id, req.order_id, today)
            if existing is None:
                write = _plan(state, req, caller, now, today,
                              db.settings.reservation_ttl_days, guard=False)
                touch(req.customer_id)
                if state is None:
                    await pg_sql.write_unknown(pg, write.order, write.entry)
                else:
                    written = await pg_sql.write(pg, write)
                    assert written is not None, "an unguarded write under the lock lands"
    except UniqueViolationError as exc:
        return await _replay_after_race(db, req, exc)
    if existing is not None:
        return await _replay_of(db, existing, req)
    return CheckResult(render_decision(write.entry), False, req.channel)


async def _serialised(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult:
    """SQLite: the whole check inside one write transaction (BEGIN IMMEDIATE)."""
    today, now = clock.today(), clock.now()
    try:
        async with db.begin() as conn:
            state = await credit_state.load_locked(conn, req.customer_id, today)
            order = await get_order(conn, req.order_id)
            if order is not None:
                return await _replay(conn, _existing(order), req)
            write = _plan(state, req, caller, now, today, db.settings.reservation_ttl_days,
                          guard=False)
            if state is None:
                await write_unknown_customer(conn, write.order, write.entry)
            else:
                await write_check(conn, write)
    except IntegrityError as exc:
        return await _replay_after_race(db, req, exc)
    return CheckResult(render_decision(write.entry), False, req.channel)


def _actual(write: CheckWrite, written: Written) -> dict[str, Any]:
    """The decision's figures as they were when the guarded write landed."""
    recv, before = written.open_receivables, written.open_orders_before
    return {**write.entry, "open_receivables": recv, "open_orders": before,
            "available": write.effective_limit - recv - before - write.reserve}


def _existing(order: Order) -> ExistingOrder:
    return ExistingOrder(order.customer_id, order.requested_amount, order.currency,
                         order.channel, order.entry_decision_id)


def _plan(state: CreditState | None, req: CreditCheckIn, caller: Caller, now: dt.datetime,
          today: dt.date, ttl_days: int, *, guard: bool) -> CheckWrite:
    if state is None:
        decision, exposure = unknown_customer(), Exposure(ZERO, ZERO)
    else:
        if req.currency != state.account.currency:
            raise Unprocessable(
                f"the account of {req.customer_id} is kept in {state.account.currency}, "
                f"not {req.currency}", code="currency_mismatch")
        decision, exposure = state.evaluate(req.amount, today), state.account.exposure
    approved = decision.approved
    reserve = req.amount if approved else ZERO
    expires_at = expiry(now, ttl_days) if approved else None
    entry_id = new_id()
    entry = decision_entry(
        entry_id=entry_id, at=now, event=Event.CREDIT_CHECK, actor=caller.name,
        customer_id=req.customer_id, order_id=req.order_id, decision=decision,
        amount=req.amount, currency=req.currency, exposure=exposure, reserved=reserve,
        expires_at=expires_at)
    order = {
        "customer_id": req.customer_id, "order_id": req.order_id,
        "status": _STATUS_OF[decision.outcome].value, "amount": req.amount,
        "requested_amount": req.amount, "currency": req.currency, "channel": req.channel,
        "reserved": reserve, "invoiced": ZERO, "released": False,
        "entry_decision_id": entry_id, "dispatch_decision_id": None,
        "expires_at": expires_at, "created_at": now, "updated_at": now,
    }
    return CheckWrite(
        order=order, entry=entry, reserve=reserve,
        held=req.amount if decision.outcome is Outcome.HOLD else ZERO,
        effective_limit=decision.effective_limit or ZERO,
        guard=_guard(state, decision) if guard and state is not None else None)


def _guard(state: CreditState, decision: Decision) -> Guard:
    account = state.account
    if decision.approved:
        assert decision.effective_limit is not None
        return Guard(account.terms_version, account.ledger_version, state.policy_version,
                     within=decision.effective_limit)
    return Guard(account.terms_version, account.ledger_version, state.policy_version,
                 open_orders=account.open_orders)


def _same_request(existing: ExistingOrder, req: CreditCheckIn) -> bool:
    return (existing.customer_id == req.customer_id
            and existing.requested_amount == req.amount
            and existing.currency == req.currency
            and existing.channel == req.channel)


async def _replay(conn: AsyncConnection, existing: ExistingOrder, req: CreditCheckIn
                  ) -> CheckResult:
    if not _same_request(existing, req):
        raise Conflict(f"order {req.order_id} was already checked with a different request; "
                       "use a new order_id, or PATCH the order to change its amount")
    entry: Any = await get_entry(conn, existing.customer_id, existing.entry_decision_id)
    return CheckResult(render_decision(entry), True, req.channel)


async def _replay_of(db: Database, existing: ExistingOrder, req: CreditCheckIn
                     ) -> CheckResult:
    async with db.autocommit() as conn:
        return await _replay(conn, existing, req)


async def _replay_after_race(db: Database, req: CreditCheckIn, exc: Exception
                             ) -> CheckResult:
    """An identical request won the race to insert this order: answer with its decision."""
    async with db.autocommit() as conn:
        order = await get_order(conn, req.order_id)
        if order is None:
            raise exc
        return await _replay(conn, _existing(order), req)
