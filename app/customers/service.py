"""Credit accounts: create, replace, change terms; exposure; the credit file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from app import clock
from app.auth.roles import Caller
from app.credit.entries import DECISION_EVENTS, Event, event_entry
from app.credit.release import Decided
from app.credit.schemas import DecisionOut, render_decision
from app.credit.state import read_state
from app.customers import repository as repo
from app.customers.models import Account
from app.customers.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ExposureOut,
    HistoryEntryOut,
    HistoryPage,
    TemporaryLimitOut,
)
from app.db import Database
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.money import ZERO, format_amount
from app.orders.service import auto_release_decisions

TERMS = ("name", "currency", "credit_limit", "risk_class", "payment_terms_days", "blocked",
         "block_reason", "temp_limit_amount", "temp_limit_expires_on")


@dataclass
class AccountChange:
    account: AccountOut
    created: bool
    decided: list[tuple[DecisionOut, str | None]]


def render_account(account: Account, today: dt.date) -> AccountOut:
    temp = account.temporary_limit
    return AccountOut(
        customer_id=account.customer_id, name=account.name, currency=account.currency,
        credit_limit=account.credit_limit, effective_limit=account.effective_limit(today),
        risk_class=account.risk_class, payment_terms_days=account.payment_terms_days,
        blocked=account.blocked, block_reason=account.block_reason,
        temporary_limit=None if temp is None else TemporaryLimitOut(
            amount=temp.amount, expires_on=temp.expires_on, active=today <= temp.expires_on),
        created_at=account.created_at, updated_at=account.updated_at)


def _terms_of(body: AccountIn) -> dict[str, Any]:
    temp = body.temporary_limit
    return {
        "name": body.name, "currency": body.currency, "credit_limit": body.credit_limit,
        "risk_class": body.risk_class, "payment_terms_days": body.payment_terms_days,
        "blocked": body.blocked, "block_reason": body.block_reason,
        "temp_limit_amount": temp.amount if temp else None,
        "temp_limit_expires_on": temp.expires_on if temp else None,
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal | dt.date):
        return format_amount(value) if isinstance(value, Decimal) else value.isoformat()
    return value


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
        current = await repo.get_account(conn, customer_id, lock=True)
        if current is None:
            if not create:
                raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
            terms = terms_for(None)
            await repo.insert_account(conn, {"customer_id": customer_id, **terms}, now)
            await repo.add_entries(conn, [event_entry(
                entry_id=new_id(), at=now, event=Event.ACCOUNT_CREATED, actor=caller.name,
                customer_id=customer_id, note=reason,
                details={k: _jsonable(v) for k, v in terms.items()})])
            created = True
        else:
            terms = terms_for(current)
            changes = {k: {"old": _jsonable(getattr(current, k)), "new": _jsonable(v)}
                       for k, v in terms.items() if getattr(current, k) != v}
            if changes:
                _refuse_currency_change(current, terms["currency"])
                await repo.update_terms(conn, customer_id, terms, now)
                await repo.add_entries(conn, [event_entry(
                    entry_id=new_id(), at=now, event=Event.ACCOUNT_CHANGED, actor=caller.name,
                    customer_id=customer_id, note=reason, details={"changes": changes})])
                decided = await auto_release_decisions(conn, db, customer_id, today, now)
            created = False
        account = await repo.get_account(conn, customer_id)
        assert account is not None
        return AccountChange(render_account(account, today), created, decided)


def _refuse_currency_change(account: Account, currency: str) -> None:
    if currency == account.currency:
        return
    if account.open_receivables != ZERO or account.open_orders != ZERO or account.held_count:
        raise Conflict(f"{account.customer_id} has exposure in {account.currency}; its currency "
                       "cannot change until that is settled", code="currency_change")


async def get_account(db: Database, customer_id: str) -> AccountOut:
    async with db.autocommit() as conn:
        account = await repo.get_account(conn, customer_id)
    if account is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    return render_account(account, clock.today())


async def exposure(db: Database, customer_id: str) -> ExposureOut:
    """Exposure from the maintained aggregates plus the indexed overdue facts."""
    today = clock.today()
    state = await read_state(db, customer_id, today)
    if state is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    a = state.account
    limit = a.effective_limit(today)
    total = a.exposure.total
    return ExposureOut(
        customer_id=a.customer_id, currency=a.currency, credit_limit=a.credit_limit,
        effective_limit=limit, open_receivables=a.open_receivables, open_orders=a.open_orders,
        exposure=total, available=limit - total, overdue_amount=state.overdue.amount,
        oldest_overdue_days=state.overdue.oldest_days, held_orders=a.held_amount,
        held_count=a.held_count)


async def history(db: Database, customer_id: str, cursor: str | None, limit: int
                  ) -> HistoryPage:
    """The credit file, newest first."""
    async with db.autocommit() as conn:
        if await repo.get_account(conn, customer_id) is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        rows = await repo.list_entries(conn, customer_id, before=cursor, limit=limit + 1)
    items = [_history_item(r) for r in rows[:limit]]
    next_cursor = items[-1].entry_id if len(rows) > limit else None
    return HistoryPage(items=items, next_cursor=next_cursor)


def _history_item(row: Any) -> HistoryEntryOut:
    decision = render_decision(row) if row["event"] in DECISION_EVENTS else None
    return HistoryEntryOut(entry_id=row["entry_id"], at=row["at"], event=row["event"],
                           actor=row["actor"], order_id=row["order_id"], decision=decision,
                           details=row["details"], note=row["note"])
