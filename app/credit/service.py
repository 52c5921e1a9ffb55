"""The reserving credit check: one pipeline, replay-safe.

read (state and any stored order) -> replay, or plan (pure) -> guarded write. Nothing is
locked while Python decides, and the reads of checks in flight share statements
(app/credit/batching.py); when the guard finds that what the decision was based on
changed, or the decision raises an alert (written in the same transaction), the same steps
run once more in a transaction under the account's row lock, where the write cannot fail.
Dry runs read (from the cache when it can) and plan, and write nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asyncpg import UniqueViolationError
from sqlalchemy.exc import IntegrityError

from app import clock
from app.auth.roles import Caller
from app.cache import Cache
from app.credit import sql
from app.credit.batching import ALONE, WriteAlone, reader_of, writer_of
from app.credit.plans import CheckPlan, ExistingOrder, plan_check
from app.credit.reads import read_state
from app.credit.schemas import CreditCheckIn, DecisionOut, render_decision
from app.credit_file.repository import get_entry
from app.db.engine import Database, DriverSQL, touch
from app.errors import Conflict, is_database_unavailable, is_deadlock
from app.events.outbox import count_emitted
from app.fx.convert import missing_rate
from app.fx.repository import rate_on
from app.ids import new_id
from app.metrics import Decided
from app.monitoring.service import raise_alert
from app.orders.repository import get_order


@dataclass(frozen=True)
class CheckResult:
    decision: DecisionOut
    replayed: bool
    decided: Decided  # what this request decided and committed (for metrics)


async def check_credit(db: Database, cache: Cache | None, req: CreditCheckIn, caller: Caller
                       ) -> CheckResult:
    """Decide an order; an approval reserves its amount. Replays return the stored decision."""
    if req.dry_run:
        return await _dry_run(db, cache, req, caller)
    try:
        return await _reserve(db, req, caller)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        # A pooled connection died with the database's last outage (the pool renews all of
        # them now). Checks are idempotent by order_id, so one more try is safe: a decision
        # that did land is found and replayed.
        return await _reserve(db, req, caller)


async def _dry_run(db: Database, cache: Cache | None, req: CreditCheckIn, caller: Caller
                   ) -> CheckResult:
    today = clock.today()
    state = await read_state(db, cache, req.customer_id, today)
    rate = None
    if state is not None and req.currency != state.account.currency:
        async with db.autocommit() as conn:
            rate = await rate_on(conn, req.currency, state.account.currency, today)
    plan = _plan(db, sql.Read(state, None, fx_rate=rate), req, caller, today, guarded=False)
    return CheckResult(render_decision(plan.entry(), dry_run=True), False, [])


async def _reserve(db: Database, req: CreditCheckIn, caller: Caller) -> CheckResult:
    result = await _attempt(db, req, caller, locked=False)
    if result is None:
        try:
            result = await _attempt(db, req, caller, locked=True)
        except Exception as exc:
            if not is_deadlock(exc):
                raise
            # A member that moved into a group while its lock was awaited has its group locked
            # after its account (app/customers/locking.py), which can deadlock; the database
            # rolled this one back, so once more.
            result = await _attempt(db, req, caller, locked=True)
    assert result is not None, "a write under the row lock has no guard to fail"
    return result


async def _attempt(db: Database, req: CreditCheckIn, caller: Caller, *, locked: bool
                   ) -> CheckResult | None:
    """One pass of the pipeline; None when an unlocked pass cannot stand on its own: its
    guard failed, or its decision raises an alert (which needs a transaction)."""
    today = clock.today()
    existing: ExistingOrder | None = None
    plan: CheckPlan | None = None
    landed: sql.Landed | None = None
    try:
        if locked:
            async with db.begin() as conn:
                statements = DriverSQL(conn)
                read = await sql.read(statements, req.customer_id, req.order_id, today,
                                      req.currency, lock=True)
                existing = read.existing
                if existing is None:
                    plan = _plan(db, read, req, caller, today, guarded=False)
                    touch(req.customer_id)
                    landed = await sql.write(statements, plan)
                    for kind, details in plan.alerts.items():
                        await raise_alert(conn, req.customer_id, kind, details, now=plan.at)
        else:
            read = await reader_of(db).read(req.customer_id, req.order_id, today,
                                            req.currency)
            existing = read.existing
            if existing is None:
                plan = _plan(db, read, req, caller, today, guarded=True)
                if plan.alerts:
                    return None
                written = await writer_of(db).write(plan) if sql.batchable(plan) else ALONE
                if isinstance(written, WriteAlone):
                    async with db.driver() as pg:
                        touch(req.customer_id)
                        landed = await sql.write(pg, plan)
                else:
                    landed = written
    except (UniqueViolationError, IntegrityError):
        # An identical request won the race to insert this order: answer with its decision.
        existing = await _stored(db, req.order_id)
        if existing is None:
            raise
    if existing is not None:
        return await _replay(db, existing, req)
    if plan is None or landed is None:
        return None
    if plan.status in sql.EVENT_OF:
        count_emitted([sql.EVENT_OF[plan.status].value])
    return CheckResult(render_decision(plan.entry(landed.exposure, landed.group)), False,
                       [(plan.decision, req.channel)])


def _plan(db: Database, read: sql.Read, req: CreditCheckIn, caller: Caller,
          today: dt.date, *, guarded: bool) -> CheckPlan:
    state = read.state
    if state is not None and req.currency != state.account.currency and read.fx_rate is None:
        raise missing_rate(req.currency, state.account.currency)
    return plan_check(state, customer_id=req.customer_id, order_id=req.order_id,
                      amount=req.amount, currency=req.currency, channel=req.channel,
                      actor=caller.name, at=clock.now(), today=today,
                      ttl_days=db.settings.reservation_ttl_days, entry_id=new_id(),
                      guarded=guarded, watch=read.watch, fx_rate=read.fx_rate)


async def _stored(db: Database, order_id: str) -> ExistingOrder | None:
    async with db.autocommit() as conn:
        order = await get_order(conn, order_id)
    if order is None:
        return None
    return ExistingOrder(order.customer_id, order.requested_amount, order.currency,
                         order.channel, order.entry_decision_id)


async def _replay(db: Database, existing: ExistingOrder, req: CreditCheckIn) -> CheckResult:
    """The stored decision of an identical earlier request; 409 for a different one."""
    if not existing.same_request(req.customer_id, req.amount, req.currency, req.channel):
        raise Conflict(f"order {req.order_id} was already checked with a different request; "
                       "use a new order_id, or PATCH the order to change its amount")
    async with db.autocommit() as conn:
        entry = await get_entry(conn, existing.customer_id, existing.entry_decision_id)
    return CheckResult(render_decision(entry), True, [])
