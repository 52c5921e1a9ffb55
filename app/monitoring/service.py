"""Early-warning alerts: raise, evaluate (raise what newly holds, resolve what no longer does),
acknowledge, list; and the reviews due. Everything that changes an alert runs in the caller's
transaction and writes the credit-file entry with it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ARRAY,
    String,
    any_,
    bindparam,
    event,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock, metrics
from app.auth.roles import Caller
from app.credit.plans import CreditState
from app.credit.rows import POLICY_COLUMNS, state_from_row
from app.credit_file.entries import Event, event_entry
from app.credit_file.repository import add_entries
from app.customers.tables import accounts
from app.db.engine import Database
from app.errors import Conflict, NotFound
from app.events.outbox import emit
from app.events.types import EventType
from app.ids import new_id
from app.monitoring.alerts import (
    Facts,
    Kind,
    LimitExpiry,
    OpenAlert,
    plan,
)
from app.monitoring.schemas import AlertOut
from app.monitoring.tables import alerts
from app.policies.tables import policies
from app.receivables.tables import open_items
from app.securities.repository import expiring, valid_arrays

SYSTEM = "system"
OPEN = "open"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)

_IDS = bindparam("ids", type_=ARRAY(String))


def _facts_statement() -> Any:
    overdue = (open_items.c.customer_id == accounts.c.customer_id, open_items.c.open_amount > 0,
               open_items.c.due_on < bindparam("today"))
    oldest = select(func.min(open_items.c.due_on)).where(*overdue).scalar_subquery()
    amount = select(func.sum(open_items.c.open_amount)).where(*overdue).scalar_subquery()
    valid = valid_arrays(accounts.c.customer_id, accounts.c.currency, bindparam("today"))
    return (
        select(*accounts.c, *(policies.c[n].label(f"p_{n}") for n in POLICY_COLUMNS),
               policies.c.version.label("p_version"), oldest.label("oldest_due_on"),
               amount.label("overdue_amount"), *valid.c)
        .select_from(accounts.outerjoin(policies, policies.c.risk_class == accounts.c.risk_class)
                     .outerjoin(valid, true()))
        .where(accounts.c.customer_id == any_(_IDS))
        .order_by(accounts.c.customer_id)
    )


_FACTS = _facts_statement()
_OPEN = (select(alerts.c.alert_id, alerts.c.customer_id, alerts.c.kind, alerts.c.raised_at,
                alerts.c.details)
         .where(alerts.c.customer_id == any_(_IDS), alerts.c.status != RESOLVED))


_INSERT = (pg_insert(alerts)
           .on_conflict_do_nothing(index_elements=["customer_id", "kind"],
                                   index_where=text("status <> 'resolved'"))
           .returning(alerts.c.alert_id))


def facts_of(state: CreditState, today: dt.date,
             securities: Sequence[tuple[str, Decimal, dt.date]] = ()) -> Facts:
    """The alert facts of a credit state (the account's own figures and its class policy);
    `securities` are the valid ones as (security_id, counted amount, valid_until)."""
    a = state.account
    temp = a.temporary_limit
    expiries = [LimitExpiry("temporary_limit", temp.amount, temp.expires_on)] if temp else []
    expiries += [LimitExpiry(f"security:{sid}", amount, until)
                 for sid, amount, until in securities]
    return Facts(
        exposure=a.exposure.total, effective_limit=state.effective_limit(today),
        alert_utilisation=state.policy.alert_utilisation,
        alert_payment_index=state.policy.alert_payment_index,
        max_days_past_due=state.policy.max_days_past_due,
        oldest_overdue_days=state.overdue.oldest_days, overdue_amount=state.overdue.amount,
        payment_index=a.payment_index, review_due_on=a.review_due_on, today=today,
        risk_class=a.risk_class, expiries=expiries)


# -- counting raises once their transaction commits -------------------------------------------

_pending: WeakKeyDictionary[Connection, Counter[str]] = WeakKeyDictionary()


def _count_on_commit(conn: AsyncConnection, kinds: Iterable[str]) -> None:
    """creditgate_alerts_raised_total moves when the raising transaction commits (a rolled
    back raise never happened)."""
    sync = conn.sync_connection
    assert sync is not None
    if sync not in _pending:
        _pending[sync] = Counter()
        event.listen(sync, "commit", _committed)
        event.listen(sync, "rollback", _rolled_back)
    _pending[sync].update(kinds)


def _committed(sync: Connection) -> None:
    for kind, n in _pending.pop(sync, Counter()).items():
        metrics.ALERTS_RAISED.labels(kind).inc(n)


def _rolled_back(sync: Connection) -> None:
    _pending.pop(sync, None)


# -- raising and resolving ---------------------------------------------------------------------


def _entry(alert_id: str, customer_id: str, kind: str, event_name: str, now: dt.datetime,
           actor: str = SYSTEM, details: dict[str, Any] | None = None,
           note: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"alert_id": alert_id, "kind": kind}
    if details is not None:
        body["details"] = details
    return event_entry(entry_id=new_id(), at=now, event=event_name, actor=actor,
                       customer_id=customer_id, details=body, note=note)


async def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert alerts, skipping any (customer, kind) already open; the rows that went in."""
    if not rows:
        return []
    result = await conn.execute(_INSERT, rows)  # executemany: batched into multi-row VALUES
    inserted = set(result.scalars().all())
    done = [r for r in rows if r["alert_id"] in inserted]
    await add_entries(conn, [_entry(r["alert_id"], r["customer_id"], r["kind"],
                                    Event.ALERT_RAISED, r["raised_at"], details=r["details"])
                             for r in done])
    for r in done:
        await emit(conn, EventType.ALERT_RAISED, AlertOut.model_validate(r),
                   customer_id=r["customer_id"], now=r["raised_at"])
    _count_on_commit(conn, (r["kind"] for r in done))
    return done


def _row(customer_id: str, kind: str, details: dict[str, Any], now: dt.datetime
         ) -> dict[str, Any]:
    return {"alert_id": new_id(), "customer_id": customer_id, "kind": kind, "status": OPEN,
            "raised_at": now, "acknowledged_at": None, "acknowledged_by": None,
            "resolved_at": None, "details": details, "note": None}


async def raise_alert(conn: AsyncConnection, customer_id: str, kind: str,
                      details: dict[str, Any], *, now: dt.datetime) -> bool:
    """Raise an alert unless one of its kind is open (or acknowledged) for the customer, in
    the caller's transaction; True if it was raised. The credit-file entry and the metric
    come with it."""
    return bool(await _insert(conn, [_row(customer_id, Kind(kind).value, details, now)]))


async def _resolve(conn: AsyncConnection, found: Sequence[tuple[str, OpenAlert]],
                   now: dt.datetime) -> int:
    if not found:
        return 0
    stmt = (update(alerts)
            .where(alerts.c.alert_id == any_(bindparam("alert_ids", type_=ARRAY(String))),
                   alerts.c.status != RESOLVED)
            .values(status=RESOLVED, resolved_at=now)
            .returning(*alerts.c))
    result = await conn.execute(stmt, {"alert_ids": [a.alert_id for _c, a in found]})
    rows = {r["alert_id"]: r for r in result.mappings().all()}
    await add_entries(conn, [_entry(a.alert_id, c, a.kind, Event.ALERT_RESOLVED, now)
                             for c, a in found if a.alert_id in rows])
    for alert_id in sorted(rows):
        row = rows[alert_id]
        await emit(conn, EventType.ALERT_RESOLVED, AlertOut.model_validate(dict(row)),
                   customer_id=row["customer_id"], now=now)
    return len(rows)


@dataclass
class Evaluated:
    evaluated: int = 0
    raised: int = 0
    resolved: int = 0


async def evaluate_many(conn: AsyncConnection, customer_ids: Sequence[str], *, today: dt.date,
                        now: dt.datetime) -> Evaluated:
    """Evaluate many customers with a handful of statements (the sweep's batches). The
    caller holds their account locks (or accepts that a concurrent change re-evaluates)."""
    ids = list(customer_ids)
    if not ids:
        return Evaluated()
    rows = (await conn.execute(_FACTS, {"ids": ids, "today": today})).mappings().all()
    open_by: dict[str, list[OpenAlert]] = {}
    for r in (await conn.execute(_OPEN, {"ids": ids})).mappings():
        open_by.setdefault(r["customer_id"], []).append(
            OpenAlert(r["alert_id"], r["kind"], r["raised_at"], r["details"] or {}))
    new_rows: list[dict[str, Any]] = []
    gone: list[tuple[str, OpenAlert]] = []
    for row in rows:
        state = state_from_row(row, today)
        if state is None:
            continue
        customer_id = state.account.customer_id
        facts = facts_of(state, today, expiring(row, state.account.currency))
        p = plan(facts, open_by.get(customer_id, []), now)
        new_rows += [_row(customer_id, k.value, d, now) for k, d in p.raise_.items()]
        gone += [(customer_id, a) for a in p.resolve]
    resolved = await _resolve(conn, gone, now)
    raised = 0
    for start in range(0, len(new_rows), 1000):
        raised += len(await _insert(conn, new_rows[start:start + 1000]))
    return Evaluated(len(rows), raised, resolved)


async def evaluate(conn: AsyncConnection, customer_id: str, *, today: dt.date,
                   now: dt.datetime) -> None:
    """Raise what newly holds for the customer, resolve what no longer does: at the end of
    every customer-scoped change, in its transaction (the account is locked by the caller)."""
    await evaluate_many(conn, [customer_id], today=today, now=now)


# -- acknowledging and reading -----------------------------------------------------------------


@dataclass
class Acknowledged:
    alert: Any
    replayed: bool


async def acknowledge(db: Database, alert_id: str, note: str | None, caller: Caller
                      ) -> Acknowledged:
    """open -> acknowledged (still open for the one-per-kind rule); again: a replay;
    a resolved alert: 409."""
    now = clock.now()
    async with db.begin() as conn:
        row = (await conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)
                                  .with_for_update())).mappings().first()
        if row is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        if row["status"] == ACKNOWLEDGED:
            return Acknowledged(row, True)
        if row["status"] == RESOLVED:
            raise Conflict(f"alert {alert_id} is resolved; it cannot be acknowledged",
                           code="alert_resolved")
        stmt = (update(alerts).where(alerts.c.alert_id == alert_id)
                .values(status=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=caller.name,
                        note=note)
                .returning(*alerts.c))
        updated = (await conn.execute(stmt)).mappings().one()
        await add_entries(conn, [_entry(alert_id, row["customer_id"], row["kind"],
                                        Event.ALERT_ACKNOWLEDGED, now, actor=caller.name,
                                        note=note)])
        return Acknowledged(updated, False)


async def list_alerts(db: Database, *, customer_id: str | None, kind: str | None,
                      status: str | None, after: tuple[dt.datetime, str] | None,
                      limit: int) -> list[Any]:
    """Alerts, newest first, strictly after the cursor position."""
    stmt = select(alerts)
    if customer_id is not None:
        stmt = stmt.where(alerts.c.customer_id == customer_id)
    if kind is not None:
        stmt = stmt.where(alerts.c.kind == kind)
    if status is not None:
        stmt = stmt.where(alerts.c.status == status)
    if after is not None:
        at, alert_id = after
        stmt = stmt.where((alerts.c.raised_at < at)
                          | ((alerts.c.raised_at == at) & (alerts.c.alert_id < alert_id)))
    stmt = stmt.order_by(alerts.c.raised_at.desc(), alerts.c.alert_id.desc()).limit(limit)
    async with db.autocommit() as conn:
        return list((await conn.execute(stmt)).mappings().all())


async def list_reviews(db: Database, *, due_before: dt.date,
                       after: tuple[dt.date, str] | None, limit: int) -> list[Any]:
    """Accounts whose review is due on or before `due_before`, oldest first."""
    stmt = select(accounts.c.customer_id, accounts.c.name, accounts.c.currency,
                  accounts.c.credit_limit, accounts.c.risk_class,
                  accounts.c.review_due_on).where(accounts.c.review_due_on.is_not(None),
                                                  accounts.c.review_due_on <= due_before)
    if after is not None:
        day, customer_id = after
        stmt = stmt.where((accounts.c.review_due_on > day)
                          | ((accounts.c.review_due_on == day)
                             & (accounts.c.customer_id > customer_id)))
    stmt = stmt.order_by(accounts.c.review_due_on, accounts.c.customer_id).limit(limit)
    async with db.autocommit() as conn:
        return list((await conn.execute(stmt)).mappings().all())


async def open_counts(conn: AsyncConnection) -> dict[str, int]:
    """Open (and acknowledged) alerts per kind, every kind present (for the gauge)."""
    stmt = (select(alerts.c.kind, func.count()).where(alerts.c.status != RESOLVED)
            .group_by(alerts.c.kind))
    counts = {k.value: 0 for k in Kind}
    for kind, n in (await conn.execute(stmt)).all():
        counts[kind] = int(n)
    return counts
