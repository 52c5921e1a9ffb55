"""Securities of a credit account: add, replace, remove, read.

Every write runs under the account's row lock (its group's first), bumps the account's
terms_version (an optimistic check decided on the old limit does not land, and the cached
state is retired), writes the credit file and re-evaluates the account's alerts; one that can
raise the limit also lets held orders that now fit go (AUTO_RELEASE).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.credit_file.entries import Event, event_entry, recorded
from app.credit_file.repository import add_entries
from app.customers import repository as accounts
from app.customers.models import Account
from app.customers.service import render_account
from app.db.engine import Database
from app.errors import NotFound
from app.events.outbox import emit
from app.events.types import EventType
from app.flows import auto_release
from app.fx.convert import counted_in
from app.fx.repository import conversion
from app.ids import new_id
from app.metrics import Decided
from app.money import format_amount
from app.monitoring.service import evaluate
from app.securities import repository as repo
from app.securities.schemas import SecurityIn, SecurityOut


@dataclass
class SecurityChange:
    security: SecurityOut
    created: bool
    decided: Decided


def render(row: Any, account_currency: str, rate: Decimal | None, today: dt.date
           ) -> SecurityOut:
    """A stored security with what it counts for at `rate` (today's) and whether it counts."""
    cur = row["currency"]
    return SecurityOut(
        customer_id=row["customer_id"], security_id=row["security_id"], kind=row["kind"],
        amount=row["amount"], currency=cur, valid_from=row["valid_from"],
        valid_until=row["valid_until"], provider=row["provider"], reference=row["reference"],
        converted_amount=counted_in(row["amount"], cur, account_currency, rate),
        fx_rate=None if cur == account_currency else rate,
        valid_today=row["valid_from"] <= today <= row["valid_until"],
        created_at=row["created_at"], updated_at=row["updated_at"])




def _fields(values: Any) -> dict[str, Any]:
    return {name: recorded(values[name]) for name in repo.FIELDS}


async def _locked_account(conn: AsyncConnection, customer_id: str) -> Account:
    account = await accounts.get_account(conn, customer_id, lock=True)
    if account is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    return account


def _not_found(customer_id: str, security_id: str) -> NotFound:
    return NotFound(f"no security {security_id} of {customer_id}", code="security_not_found")


async def put_security(db: Database, customer_id: str, security_id: str, body: SecurityIn,
                       caller: Caller) -> SecurityChange:
    """Create (created=True) or replace a security; an identical replacement changes
    nothing and writes nothing."""
    today, now = clock.today(), clock.now()
    values = {name: getattr(body, name) for name in repo.FIELDS}
    async with db.begin() as conn:
        account = await _locked_account(conn, customer_id)
        limit_before = await _effective_limit(conn, account, today)
        # Refused without a rate today, even for one that starts later: what it will count
        # for must be known when it is accepted.
        converted = await conversion(conn, body.amount, body.currency, account.currency, today)
        current = await repo.get(conn, customer_id, security_id)
        if current is None:
            row = await repo.insert_security(conn, customer_id, security_id, values, now)
            details = {"security_id": security_id, **_fields(values),
                       "converted_amount": format_amount(converted.converted_amount),
                       "fx_rate": None if converted.fx_rate is None else str(converted.fx_rate)}
            event = Event.SECURITY_ADDED
        else:
            changes = {name: {"old": recorded(current[name]), "new": recorded(values[name])}
                       for name in repo.FIELDS if current[name] != values[name]}
            if not changes:
                return SecurityChange(render(current, account.currency, converted.fx_rate,
                                             today), False, [])
            row = await repo.update_security(conn, customer_id, security_id, values, now)
            details = {"security_id": security_id, "changes": changes}
            event = Event.SECURITY_CHANGED
        decided = await _changed(db, conn, customer_id, limit_before, event, details, caller,
                                 body.reason, today=today, now=now, may_free=True)
        return SecurityChange(render(row, account.currency, converted.fx_rate, today),
                              current is None, decided)


async def delete_security(db: Database, customer_id: str, security_id: str, caller: Caller
                          ) -> None:
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        account = await _locked_account(conn, customer_id)
        limit_before = await _effective_limit(conn, account, today)
        row = await repo.delete_security(conn, customer_id, security_id)
        if row is None:
            raise _not_found(customer_id, security_id)
        details = {"security_id": security_id, **_fields(row)}
        await _changed(db, conn, customer_id, limit_before, Event.SECURITY_REMOVED, details,
                       caller, None, today=today, now=now, may_free=False)


async def _effective_limit(conn: AsyncConnection, account: Account, today: dt.date
                           ) -> Decimal:
    terms = replace(account.terms, securities=await repo.counted(conn, account.customer_id,
                                                                 today))
    return terms.effective_limit(today)


async def _changed(db: Database, conn: AsyncConnection, customer_id: str,
                   limit_before: Decimal, event: str, details: dict[str, Any], caller: Caller,
                   note: str | None, *, today: dt.date, now: dt.datetime, may_free: bool
                   ) -> Decided:
    """What follows every change of a security, in its transaction: the terms version,
    the credit file, held orders that now fit, alerts, and account.limit_changed when the
    effective limit of today moved."""
    await accounts.update_terms(conn, customer_id, {}, now)
    await add_entries(conn, [event_entry(entry_id=new_id(), at=now, event=event,
                                         actor=caller.name, customer_id=customer_id,
                                         details=details, note=note)])
    decided: Decided = []
    if may_free:
        decided = await auto_release(conn, customer_id, today=today, now=now,
                                     ttl_days=db.settings.reservation_ttl_days)
    await evaluate(conn, customer_id, today=today, now=now)
    after = await accounts.get_account(conn, customer_id)
    assert after is not None
    securities = await repo.counted(conn, customer_id, today)
    rendered = render_account(after, today, securities)
    if rendered.effective_limit != limit_before:
        await emit(conn, EventType.ACCOUNT_LIMIT_CHANGED, rendered, customer_id=customer_id,
                   now=now)
    return decided


async def list_securities(db: Database, customer_id: str) -> list[SecurityOut]:
    today = clock.today()
    async with db.autocommit() as conn:
        if await accounts.get_account(conn, customer_id) is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        rows = await repo.with_rates(conn, customer_id, today)
    return [render(r, r["account_currency"], r["fx_rate"], today) for r in rows]


async def get_security(db: Database, customer_id: str, security_id: str) -> SecurityOut:
    today = clock.today()
    async with db.autocommit() as conn:
        if await accounts.get_account(conn, customer_id) is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        rows = await repo.with_rates(conn, customer_id, today, security_id)
    if not rows:
        raise _not_found(customer_id, security_id)
    return render(rows[0], rows[0]["account_currency"], rows[0]["fx_rate"], today)
