"""The daily sweep: conditions that only time makes true (or false).

Set-based: one SQL statement picks the candidates (accounts where some condition holds without
an open alert of its kind, and every account with an open alert, which time or a policy
change may resolve); they are evaluated in batches, each batch in its own transaction that
locks its accounts in customer_id order (the order every other multi-account writer uses), so
a sweep never holds a lock for long and never deadlocks with checks or another sweep.

Once a day across replicas: a replica claims the UTC day in `monitor_sweeps` (under a
transaction-level advisory lock, so it works behind transaction-mode PgBouncer too) and keeps
the claim alive while it sweeps; a finished day is not swept again, a crashed sweep's claim
lapses after LEASE and another replica takes over. Even two sweeps at once would raise each
alert once: the account locks serialise them and the partial unique index allows one open
alert per kind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import (
    ARRAY,
    Date,
    Integer,
    Numeric,
    String,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.credit.policy import PolicyParams
from app.customers.locking import lock_groups_of
from app.customers.tables import accounts
from app.db.engine import Database, touch
from app.monitoring.alerts import WARN_DAYS
from app.monitoring.service import Evaluated, evaluate_many
from app.monitoring.tables import monitor_sweeps

log = logging.getLogger("creditgate.monitor")
LOCK_KEY = 0x6367_6D6F_6E69  # "cgmoni": the advisory lock of claiming a sweep day
LEASE = dt.timedelta(minutes=10)
_DEFAULTS = PolicyParams()

# Accounts where a state condition (probably) holds without an open alert of its kind; the
# pure evaluation decides. Then every account with an open alert. The effective limit here
# leaves securities out (they would need today's rates): it is never above the real one, so
# the limit conditions pick a superset (one with securities alone and any exposure is
# picked as "exceeded").
_CANDIDATES = text("""
SELECT a.customer_id
FROM accounts a LEFT JOIN policies p ON p.risk_class = a.risk_class
CROSS JOIN LATERAL (SELECT a.open_receivables + a.open_orders AS exposure,
    a.credit_limit + CASE WHEN a.temp_limit_amount IS NOT NULL
                           AND a.temp_limit_expires_on >= :today
                          THEN a.temp_limit_amount ELSE 0 END AS effective) f
WHERE (a.review_due_on <= :warn_until AND NOT EXISTS (
          SELECT 1 FROM alerts x WHERE x.customer_id = a.customer_id
          AND x.kind = 'REVIEW_DUE' AND x.status <> 'resolved'))
   OR (((a.temp_limit_amount IS NOT NULL AND a.temp_limit_expires_on >= :today
         AND a.temp_limit_expires_on <= :warn_until)
        OR EXISTS (SELECT 1 FROM securities s WHERE s.customer_id = a.customer_id
                   AND s.valid_from <= :today AND s.valid_until >= :today
                   AND s.valid_until <= :warn_until))
       AND NOT EXISTS (
          SELECT 1 FROM alerts x WHERE x.customer_id = a.customer_id
          AND x.kind = 'LIMIT_EXPIRING' AND x.status <> 'resolved'))
   OR (a.payment_index < COALESCE(p.alert_payment_index, :alert_payment_index)
       AND NOT EXISTS (
          SELECT 1 FROM alerts x WHERE x.customer_id = a.customer_id
          AND x.kind = 'PAYMENT_INDEX_LOW' AND x.status <> 'resolved'))
   OR (f.effective > 0
       AND f.exposure >= COALESCE(p.alert_utilisation, :alert_utilisation) * f.effective
       AND NOT EXISTS (
          SELECT 1 FROM alerts x WHERE x.customer_id = a.customer_id
          AND x.kind = 'UTILISATION_HIGH' AND x.status <> 'resolved'))
   OR (f.exposure > f.effective AND NOT EXISTS (
          SELECT 1 FROM alerts x WHERE x.customer_id = a.customer_id
          AND x.kind = 'LIMIT_EXCEEDED' AND x.status <> 'resolved'))
   OR (EXISTS (SELECT 1 FROM open_items o WHERE o.customer_id = a.customer_id
               AND o.open_amount > 0
               AND o.due_on < :today - COALESCE(p.max_days_past_due, :max_days_past_due))
       AND NOT EXISTS (
          SELECT 1 FROM alerts x WHERE x.customer_id = a.customer_id
          AND x.kind = 'OVERDUE' AND x.status <> 'resolved'))
UNION
SELECT customer_id FROM alerts WHERE status <> 'resolved'
""").bindparams(bindparam("today", type_=Date), bindparam("warn_until", type_=Date),
                bindparam("alert_payment_index", type_=Integer),
                bindparam("alert_utilisation", type_=Numeric),
                bindparam("max_days_past_due", type_=Integer))

# Whose payment index time moves: overdue items age, applications leave the 365-day window.
_REFRESH = text("""
SELECT DISTINCT customer_id FROM open_items WHERE open_amount > 0 AND due_on < :today
UNION
SELECT DISTINCT customer_id FROM payments
WHERE received_on >= :since - 366 AND received_on < :today - 364
""").bindparams(bindparam("today", type_=Date), bindparam("since", type_=Date))

# Every writer locks a member's credit group before its account (app/customers/locking.py):
# a batch takes its groups first, in group order, then its accounts, in customer order.
_LOCK = (select(accounts.c.customer_id)
         .where(accounts.c.customer_id == any_(bindparam("ids", type_=ARRAY(String))))
         .order_by(accounts.c.customer_id).with_for_update())

Refresh = Callable[[AsyncConnection, str, dt.date], Awaitable[Any]]


def payment_index_refresher() -> Refresh | None:
    """app.receivables.behaviour_service.refresh_payment_index, where that module exists."""
    name = "app.receivables.behaviour_service"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
    found: Refresh | None = getattr(module, "refresh_payment_index", None)
    return found


async def candidates(db: Database, today: dt.date, since: dt.date, refresh: bool
                     ) -> tuple[list[str], set[str]]:
    """(customers to evaluate, customers whose payment index to refresh first)."""
    params = {"today": today, "warn_until": today + dt.timedelta(days=WARN_DAYS),
              "alert_payment_index": _DEFAULTS.alert_payment_index,
              "alert_utilisation": _DEFAULTS.alert_utilisation,
              "max_days_past_due": _DEFAULTS.max_days_past_due}
    async with db.autocommit() as conn:
        found = set((await conn.execute(_CANDIDATES, params)).scalars().all())
        stale: set[str] = set()
        if refresh:
            stale = set((await conn.execute(_REFRESH, {"today": today, "since": since}))
                        .scalars().all())
    return sorted(found | stale), stale


async def sweep(db: Database, *, today: dt.date | None = None, now: dt.datetime | None = None,
                since: dt.date | None = None, batch: int | None = None,
                heartbeat: Callable[[AsyncConnection], Awaitable[None]] | None = None
                ) -> Evaluated:
    """Evaluate every candidate now (without claiming the day: `daily_sweep` does)."""
    now = now or clock.now()
    today = today or now.date()
    size = batch or db.settings.monitor_batch_size
    refresh = payment_index_refresher()
    ids, stale = await candidates(db, today, since or today - dt.timedelta(days=1),
                                  refresh is not None)
    total = Evaluated()
    for start in range(0, len(ids), size):
        async with db.begin() as conn:
            await lock_groups_of(conn, ids[start:start + size])
            locked = list((await conn.execute(_LOCK, {"ids": ids[start:start + size]}))
                          .scalars().all())
            if refresh is not None:
                for customer_id in locked:
                    if customer_id in stale:
                        touch(customer_id)  # the cached state carries the payment index
                        await refresh(conn, customer_id, today)
            done = await evaluate_many(conn, locked, today=today, now=now)
            if heartbeat is not None:
                await heartbeat(conn)
        total.evaluated += done.evaluated
        total.raised += done.raised
        total.resolved += done.resolved
    return total


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


async def _last_finished(conn: AsyncConnection, before: dt.date) -> dt.date | None:
    day: dt.date | None = await conn.scalar(
        select(func.max(monitor_sweeps.c.day))
        .where(monitor_sweeps.c.finished_at.is_not(None), monitor_sweeps.c.day < before))
    return day


async def claim(db: Database, today: dt.date, now: dt.datetime, owner: str) -> bool:
    """Claim today's sweep: not if it is finished, or another replica's claim is alive."""
    async with db.begin() as conn:
        if not await conn.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
            return False  # another replica is claiming right now
        row = (await conn.execute(select(monitor_sweeps).where(monitor_sweeps.c.day == today)
                                  )).mappings().first()
        if row is None:
            await conn.execute(pg_insert(monitor_sweeps).values(
                day=today, claimed_by=owner, claimed_at=now))
            return True
        if row["finished_at"] is not None or row["claimed_at"] > now - LEASE:
            return False
        await conn.execute(update(monitor_sweeps).where(monitor_sweeps.c.day == today)
                           .values(claimed_by=owner, claimed_at=now))
        return True


async def _finish(conn: AsyncConnection, today: dt.date, owner: str, run: Evaluated) -> None:
    now = clock.now()
    values = {"claimed_by": owner, "claimed_at": now, "finished_at": now,
              "evaluated": run.evaluated, "raised": run.raised, "resolved": run.resolved}
    await conn.execute(pg_insert(monitor_sweeps).values(day=today, **values)
                       .on_conflict_do_update(index_elements=["day"], set_=values))


async def daily_sweep(db: Database, owner: str | None = None) -> Evaluated | None:
    """Today's sweep, if no replica has done (or is doing) it; None when skipped."""
    owner = owner or owner_name()
    now = clock.now()
    today = now.date()
    if not await claim(db, today, now, owner):
        return None
    async with db.autocommit() as conn:
        since = await _last_finished(conn, today) or today - dt.timedelta(days=1)

    async def renew(conn: AsyncConnection) -> None:
        await conn.execute(update(monitor_sweeps)
                           .where(monitor_sweeps.c.day == today,
                                  monitor_sweeps.c.claimed_by == owner)
                           .values(claimed_at=clock.now()))

    run = await sweep(db, today=today, now=now, since=since, heartbeat=renew)
    async with db.begin() as conn:
        await _finish(conn, today, owner, run)
    return run


async def run_now(db: Database) -> Evaluated:
    """`creditgate monitor`: sweep now, whatever was done today, and record the day."""
    now = clock.now()
    today = now.date()
    async with db.autocommit() as conn:
        since = await _last_finished(conn, today) or today - dt.timedelta(days=1)
    run = await sweep(db, today=today, now=now, since=since)
    async with db.begin() as conn:
        await _finish(conn, today, owner_name(), run)
    return run


async def monitor_loop(db: Database, interval: float) -> None:
    """Every `interval` seconds, run today's sweep unless it is done (or being done)."""
    while True:
        await asyncio.sleep(interval)
        try:
            run = await daily_sweep(db)
        except Exception:
            log.exception("alert sweep failed")
            continue
        if run is not None:
            log.info("alert sweep: %d accounts evaluated, %d alerts raised, %d resolved",
                     run.evaluated, run.raised, run.resolved)
