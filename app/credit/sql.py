"""The reserving check's statements, as plain SQL on the asyncpg connection (the hot path).

One read (account, class policy, overdue facts and any order already stored under the
order_id) and one write (account aggregates, the order and its decision in data-modifying
CTEs), both prepared once per connection by asyncpg. Under the row lock the read is two
statements: the lock, then the same read.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.credit.plans import CheckPlan, CreditState, ExistingOrder, Watch
from app.credit.policy import Exposure
from app.credit.repository import POLICY_COLUMNS, state_from_row
from app.credit.schemas import render_decision
from app.customers.tables import accounts
from app.events.outbox import WEBHOOKS_CHANNEL, encode
from app.events.types import EventType
from app.ids import new_id
from app.money import ZERO
from app.monitoring.alerts import SPIKE_WINDOW_DAYS
from app.orders.schemas import OrderOut

_ACCOUNT = ", ".join([*(f"a.{column.name}" for column in accounts.c),
                      *(f"p.{name} AS p_{name}" for name in POLICY_COLUMNS),
                      "p.version AS p_version", "od.oldest_due_on", "od.overdue_amount",
                      "al.open_alerts", "cd.previous_checks", "cd.previous_amount"])


def _facts(today: str) -> str:
    # Overdue facts: only positive open items, by due date, from a partial index that carries
    # the open amount, so the cost does not grow with the items that are not overdue. The
    # open alerts (at most one per kind) and the daily tally of the last 90 days (at most 90
    # rows) are what an approval's UTILISATION_HIGH and an ORDER_SPIKE are decided on.
    return f"""LEFT JOIN LATERAL (
    SELECT min(i.due_on) AS oldest_due_on, sum(i.open_amount) AS overdue_amount
    FROM open_items i WHERE i.customer_id = a.customer_id AND i.open_amount > 0
      AND i.due_on < {today}::date) od ON true
LEFT JOIN LATERAL (
    SELECT array_agg(x.kind) AS open_alerts FROM alerts x
    WHERE x.customer_id = a.customer_id AND x.status <> 'resolved') al ON true
LEFT JOIN LATERAL (
    SELECT sum(c.checks) AS previous_checks, sum(c.amount) AS previous_amount
    FROM check_days c WHERE c.customer_id = a.customer_id
      AND c.day > {today}::date - {SPIKE_WINDOW_DAYS}) cd ON true"""


_STORED_ORDER = """customer_id AS o_customer_id, requested_amount AS o_requested_amount,
    currency AS o_currency, channel AS o_channel, entry_decision_id AS o_entry_decision_id"""

SNAPSHOT = f"""SELECT {_ACCOUNT}, o.*
FROM (SELECT 1) one
LEFT JOIN accounts a ON a.customer_id = $1
LEFT JOIN policies p ON p.risk_class = a.risk_class
{_facts("$3")}
LEFT JOIN (SELECT {_STORED_ORDER} FROM orders WHERE customer_id = $1 AND order_id = $2) o
    ON true"""

# The lock is a statement of its own: a statement that waits for a row lock sees the row as
# it is once it gets it, but its subqueries (overdue facts, alerts, tally) as they were when
# it started waiting. The read after it starts afresh, and sees everything as of the lock.
LOCK = "SELECT 1 FROM accounts WHERE customer_id = $1 FOR UPDATE"

# $1 customer, $2 order, $3 status, $4 amount, $5 currency, $6 channel, $7 reserve,
# $8 held amount, $9 held count, $10 entry id, $11 expires, $12 now, $13 actor, $14 outcome,
# $15 reasons, $16 effective limit, $17 payment index, $18 inputs, $19 event id, $20 event
# type (null: no event), $21 event data; the guard: $22 terms version, $23 ledger version,
# $24 largest exposure + order (approvals) or the open orders seen (anything else), $25 the
# version of the class policy decided under; approvals also: $26 the utilisation threshold
# exposure + order must stay below (it raised no UTILISATION_HIGH), $27 whether it relied on
# an open UTILISATION_HIGH (so raised none) that must still be open.
_UPDATE_ACCOUNT = """UPDATE accounts SET open_orders = open_orders + $7::numeric,
        held_amount = held_amount + $8::numeric, held_count = held_count + $9::int,
        updated_at = $12::timestamptz
    WHERE customer_id = $1::text {guard}
    RETURNING open_receivables AS recv, open_orders - $7::numeric AS before"""
# No account: nothing to update (nor held: a prepay holds nothing); the order and its
# decision are recorded all the same.
_NO_ACCOUNT = ("SELECT 0::numeric AS recv, 0::numeric AS before"
               " WHERE $8::numeric = 0 AND $9::int = 0")

_WRITE = """WITH acct AS ({acct}), tally AS ({tally}), o AS (
    INSERT INTO orders (customer_id, order_id, status, amount, requested_amount, currency,
        channel, reserved, invoiced, released, entry_decision_id, dispatch_decision_id,
        expires_at, created_at, updated_at)
    SELECT $1::text, $2::text, $3::text, $4::numeric, $4::numeric, $5::text, $6::text,
        $7::numeric, 0, false, $10::text, NULL, $11::timestamptz, $12::timestamptz,
        $12::timestamptz FROM acct
), e AS (
    INSERT INTO credit_file (customer_id, entry_id, at, event, actor, order_id, outcome,
        reasons, amount, currency, open_receivables, open_orders, effective_limit, available,
        expires_at, payment_index, inputs)
    SELECT $1::text, $10::text, $12::timestamptz, 'credit_check', $13::text, $2::text,
        $14::text, $15::jsonb, $4::numeric, $5::text, acct.recv, acct.before,
        $16::numeric, $16::numeric - (acct.recv + acct.before + $7::numeric),
        $11::timestamptz, $17::int, $18::jsonb FROM acct
), ev AS (
    -- A hold or a prepay is an event for the neighbours (app/events/outbox.py), written in
    -- this statement, under the account row lock the UPDATE above holds until it commits.
    INSERT INTO events (event_id, type, customer_id, timestamp, data)
    SELECT $19::text, $20::text, $1::text, $12::timestamptz, $21::jsonb FROM acct
    WHERE $20::text IS NOT NULL
    RETURNING position, event_id, type, customer_id, timestamp
), dl AS (
    INSERT INTO webhook_deliveries (webhook_id, position, event_id, customer_id, status,
        attempts, due_at, created_at)
    SELECT w.webhook_id, ev.position, ev.event_id, ev.customer_id, 'pending', 0,
        ev.timestamp, ev.timestamp
    FROM ev JOIN webhooks w ON w.status = 'active' AND ev.type = ANY(w.event_types)
    RETURNING 1
)
SELECT recv, before,
    CASE WHEN EXISTS (SELECT 1 FROM dl) THEN pg_notify('{wake}', '') END AS woke
FROM acct"""

_VERSIONS = """AND terms_version = $22::int AND ledger_version = $23::int
    AND COALESCE((SELECT p.version FROM policies p WHERE p.risk_class = accounts.risk_class), 0)
        = $25::int"""
# Every check of a known customer counts in its day's tally, whatever its outcome.
_TALLY = """INSERT INTO check_days AS t (customer_id, day, checks, amount)
    SELECT $1::text, ($12::timestamptz AT TIME ZONE 'UTC')::date, 1, $4::numeric FROM acct
    ON CONFLICT (customer_id, day)
    DO UPDATE SET checks = t.checks + 1, amount = t.amount + EXCLUDED.amount"""
_NO_TALLY = "SELECT 1"
WRITE_LOCKED = _WRITE.format(acct=_UPDATE_ACCOUNT.format(guard=""), tally=_TALLY,
                             wake=WEBHOOKS_CHANNEL)
_ALERTS_STAND = """AND ($26::numeric IS NULL
        OR open_receivables + open_orders + $7::numeric < $26::numeric)
    AND (NOT $27::bool OR EXISTS (SELECT 1 FROM alerts x WHERE x.customer_id = $1::text
        AND x.kind = 'UTILISATION_HIGH' AND x.status <> 'resolved'))"""
WRITE_IF_FITS = _WRITE.format(acct=_UPDATE_ACCOUNT.format(
    guard=f"{_VERSIONS} AND open_receivables + open_orders + $7::numeric <= $24::numeric "
          f"{_ALERTS_STAND}"),
    tally=_TALLY, wake=WEBHOOKS_CHANNEL)
WRITE_IF_UNCHANGED = _WRITE.format(acct=_UPDATE_ACCOUNT.format(
    guard=f"{_VERSIONS} AND open_orders = $24::numeric"), tally=_TALLY, wake=WEBHOOKS_CHANNEL)
WRITE_NO_ACCOUNT = _WRITE.format(acct=_NO_ACCOUNT, tally=_NO_TALLY, wake=WEBHOOKS_CHANNEL)


def _event(plan: CheckPlan) -> tuple[str | None, str | None, str | None]:
    """(event id, type, data) of the check's event: the held or prepay order, with its
    decision, as GET /v1/orders renders it; nothing for an approval."""
    event_type = EVENT_OF.get(plan.status)
    if event_type is None:
        return None, None, None
    entry = plan.entry()
    order = OrderOut(
        order_id=plan.order_id, customer_id=plan.customer_id, status=plan.status,
        amount=plan.amount, currency=plan.currency, channel=plan.channel, reserved=ZERO,
        invoiced=ZERO, released=False, expires_at=None, created_at=plan.at,
        updated_at=plan.at, decisions=[render_decision(entry)])
    return new_id(), event_type.value, encode(order)


EVENT_OF = {"held": EventType.ORDER_HELD, "prepay": EventType.ORDER_PREPAY}


@dataclass(frozen=True)
class Read:
    state: CreditState | None
    existing: ExistingOrder | None
    watch: Watch = field(default_factory=Watch)


def _existing(row: Any) -> ExistingOrder | None:
    if row is None or row["o_customer_id"] is None:
        return None
    return ExistingOrder(row["o_customer_id"], row["o_requested_amount"], row["o_currency"],
                         row["o_channel"], row["o_entry_decision_id"])


async def read(pg: Any, customer_id: str, order_id: str, today: dt.date, *, lock: bool
               ) -> Read:
    """The credit state and any order already stored under the id; with `lock`, inside a
    transaction, the account row locked first."""
    if lock:
        await pg.fetchrow(LOCK, customer_id)
    row = await pg.fetchrow(SNAPSHOT, customer_id, order_id, today)
    return Read(state_from_row(row, today), _existing(row), _watch(row))


def _watch(row: Any) -> Watch:
    if row is None or row["customer_id"] is None:
        return Watch()
    return Watch(frozenset(row["open_alerts"] or ()), int(row["previous_checks"] or 0),
                 row["previous_amount"] or ZERO)


async def write(pg: Any, plan: CheckPlan) -> Exposure | None:
    """Write the plan; the exposure it landed on (before the order), or None when its
    guard no longer holds."""
    d = plan.decision
    args: list[Any] = [
        plan.customer_id, plan.order_id, plan.status, plan.amount, plan.currency, plan.channel,
        plan.reserve, plan.held, 1 if plan.held else 0, plan.entry_id, plan.expires_at,
        plan.at, plan.actor, d.outcome.value,
        json.dumps([{"code": r.code.value, "message": r.message} for r in d.reasons]),
        plan.effective_limit, plan.payment_index,
        json.dumps(plan.inputs) if plan.inputs is not None else None,
        *_event(plan)]
    g = plan.guard
    if not plan.known:
        sql = WRITE_NO_ACCOUNT
    elif g is None:
        sql = WRITE_LOCKED
    else:
        sql = WRITE_IF_FITS if g.within is not None else WRITE_IF_UNCHANGED
        args += [g.terms_version, g.ledger_version,
                 g.within if g.within is not None else g.open_orders, g.policy_version]
        if g.within is not None:
            args += [g.below, g.alert_open]
    row = await pg.fetchrow(sql, *args)
    if row is None:
        return None
    recv: Decimal = row["recv"]
    before: Decimal = row["before"]
    return Exposure(recv, before)
