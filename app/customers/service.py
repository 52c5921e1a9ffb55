"""Credit accounts: create, replace, change terms; exposure; the credit file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.cache import Cache
from app.credit.policy import Security
from app.credit.reads import read_state
from app.credit_file.entries import Event, event_entry, recorded
from app.credit_file.repository import add_entries
from app.customers import membership
from app.customers import repository as repo
from app.customers.models import Account
from app.customers.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ExposureOut,
    TemporaryLimitOut,
)
from app.db.engine import Database
from app.errors import Conflict, NotFound
from app.events.outbox import emit
from app.events.types import EventType
from app.flows import auto_release
from app.ids import new_id
from app.metrics import Decided
from app.money import ZERO
from app.monitoring.service import evaluate
from app.securities import repository as security_repo

TERMS = ("name", "currency", "credit_limit", "risk_class", "payment_terms_days", "blocked",
         "block_reason", "temp_limit_amount", "temp_limit_expires_on", "review_due_on",
         "max_order_amount", "group_id")


@dataclass
class AccountChange:
    account: AccountOut
    created: bool
    decided: Decided


def render_account(account: Account, today: dt.date, securities: tuple[Security, ...] = ()
                   ) -> AccountOut:
    """The account; its effective limit counts `securities` (those valid today, converted:
    app/securities/repository.counted), which the account row alone does not know."""
    temp = account.temporary_limit
    limit = replace(account.terms, securities=securities).effective_limit(today)
    return AccountOut(
        customer_id=account.customer_id, name=account.name, currency=account.currency,
        credit_limit=account.credit_limit, effective_limit=limit,
        risk_class=account.risk_class, payment_terms_days=account.payment_terms_days,
        blocked=account.blocked, block_reason=account.block_reason,
        temporary_limit=None if temp is None else TemporaryLimitOut(
            amount=temp.amount, expires_on=temp.expires_on, active=today <= temp.expires_on),
        review_due_on=account.review_due_on, max_order_amount=account.max_order_amount,
        group_id=account.group_id, created_at=account.created_at,
        updated_at=account.updated_at)


def _terms_of(body: AccountIn) -> dict[str, Any]:
    temp = body.temporary_limit
    return {
        "name": body.name, "currency": body.currency, "credit_limit": body.credit_limit,
        "risk_class": body.risk_class, "payment_terms_days": body.payment_terms_days,
        "blocked": body.blocked, "block_reason": body.block_reason,
        "temp_limit_amount": temp.amount if temp else None,
        "temp_limit_expires_on": temp.expires_on if temp else None,
        "review_due_on": body.review_due_on, "max_order_amount": body.max_order_amount,
        "group_id": body.group_id,
    }


def _patched(account: Account, body: AccountPatch) -> dict[str, Any]:
    terms = {name: getattr(account, name) for name in TERMS}
    given = body.model_fields_set - {"reason"}
    for name in given - {"temporary_limit"}:
        terms[name] = getattr(body, name)
    if "temporary_limit" in given:
        temp = body.temporary_limit
        terms["temp_limit_amount"] = temp.amount if temp else None
        terms["temp_limit_expires_on"] = temp.expires_on if temp else None
    if "blocked" in given and not body.blocked and "block_reason" not in given:
        terms["block_reason"] = None
    return terms




async def put_account(db: Database, customer_id: str, body: AccountIn, caller: Caller
                      ) -> AccountChange:
    """Create the account, or replace its terms (its receivables and orders stay)."""
    try:
        return await _change(db, customer_id, caller, body.reason,
                             lambda _current: _terms_of(body), create=True)
    except IntegrityError:
        # A concurrent PUT created it first; ours becomes a replacement.
        return await _change(db, customer_id, caller, body.reason,
                             lambda _current: _terms_of(body), create=True)


async def patch_account(db: Database, customer_id: str, body: AccountPatch, caller: Caller
                        ) -> AccountChange:
    return await _change(db, customer_id, caller, body.reason,
                         lambda current: _patched(current, body), create=False)


async def _change(db: Database, customer_id: str, caller: Caller, reason: str | None,
                  terms_for: Any, *, create: bool) -> AccountChange:
    today, now = clock.today(), clock.now()
    decided: Decided = []
    async with db.begin() as conn:
        current, groups = await membership.lock_for_change(conn, customer_id, terms_for,
                                                           create=create)
        if current is None:
            if not create:
                raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
            terms = terms_for(None)
            membership.refuse(terms, groups)
            await repo.insert_account(conn, {"customer_id": customer_id, **terms}, now)
            await add_entries(conn, [event_entry(
                entry_id=new_id(), at=now, event=Event.ACCOUNT_CREATED, actor=caller.name,
                customer_id=customer_id, note=reason,
                details={k: recorded(v) for k, v in terms.items()})])
            created = True
        else:
            terms = terms_for(current)
            changes = {k: {"old": recorded(getattr(current, k)), "new": recorded(v)}
                       for k, v in terms.items() if getattr(current, k) != v}
            if changes:
                _refuse_currency_change(current, terms["currency"])
                membership.refuse(terms, groups, changes)
                await repo.update_terms(conn, customer_id, terms, now)
                await add_entries(conn, [event_entry(
                    entry_id=new_id(), at=now, event=Event.ACCOUNT_CHANGED, actor=caller.name,
                    customer_id=customer_id, note=reason, details={"changes": changes})])
                decided = await auto_release(conn, customer_id, today=today, now=now,
                                 ttl_days=db.settings.reservation_ttl_days)
                decided += await membership.release_left(
                    conn, current, terms, today=today, now=now,
                    ttl_days=db.settings.reservation_ttl_days)
            created = False
        await evaluate(conn, customer_id, today=today, now=now)
        account = await repo.get_account(conn, customer_id)
        assert account is not None
        counted = await security_repo.counted(conn, customer_id, today)
        rendered = render_account(account, today, counted)
        await emit_account_events(conn, current, account, rendered, now=now)
        return AccountChange(rendered, created, decided)


def account_events(old: Account | None, new: Account) -> list[EventType]:
    """What the neighbours hear of a change of an account (DESIGN.md 2.5)."""
    found = []
    if old is not None and (old.credit_limit, old.temporary_limit) != (
            new.credit_limit, new.temporary_limit):
        found.append(EventType.ACCOUNT_LIMIT_CHANGED)
    if new.blocked and (old is None or not old.blocked):
        found.append(EventType.ACCOUNT_BLOCKED)
    if old is not None and old.blocked and not new.blocked:
        found.append(EventType.ACCOUNT_UNBLOCKED)
    return found


async def emit_account_events(conn: AsyncConnection, old: Account | None, new: Account,
                              rendered: AccountOut, *, now: dt.datetime) -> None:
    """The account's events, with the account as it is now, in the caller's transaction."""
    for event_type in account_events(old, new):
        await emit(conn, event_type, rendered, customer_id=new.customer_id, now=now)


def _refuse_currency_change(account: Account, currency: str) -> None:
    if currency == account.currency:
        return
    if account.open_receivables != ZERO or account.open_orders != ZERO or account.held_count:
        raise Conflict(f"{account.customer_id} has exposure in {account.currency}; its currency "
                       "cannot change until that is settled", code="currency_change")


async def get_account(db: Database, customer_id: str) -> AccountOut:
    today = clock.today()
    async with db.autocommit() as conn:
        account = await repo.get_account(conn, customer_id)
        counted = await security_repo.counted(conn, customer_id, today)
    if account is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    return render_account(account, today, counted)


async def exposure(db: Database, cache: Cache | None, customer_id: str) -> ExposureOut:
    """Exposure from the maintained aggregates plus the indexed overdue facts."""
    today = clock.today()
    state = await read_state(db, cache, customer_id, today)
    if state is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    a = state.account
    limit = state.effective_limit(today)
    total = a.exposure.total
    return ExposureOut(
        customer_id=a.customer_id, currency=a.currency, credit_limit=a.credit_limit,
        effective_limit=limit, secured=state.terms.secured(today),
        open_receivables=a.open_receivables, open_orders=a.open_orders,
        exposure=total, available=a.exposure.available(limit),
        overdue_amount=state.overdue.amount,
        oldest_overdue_days=state.overdue.oldest_days, held_orders=a.held_amount,
        held_count=a.held_count, payment_index=a.payment_index)
