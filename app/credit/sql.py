"""The reserving check's statements, as plain SQL on the asyncpg connection (the hot path).

One read (account, class policy, overdue facts and any order already stored under the
order_id) and one write (account aggregates, the order and its decision in data-modifying
CTEs), both prepared once per connection by asyncpg. Under the row lock the read is two
statements: the lock, then the same read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app import json_text
from app.credit.plans import CheckPlan, CreditState, ExistingOrder, Watch
from app.credit.policy import Exposure
from app.credit.rows import GROUP_COLUMNS, POLICY_COLUMNS, state_from_row
from app.credit.schemas import render_decision
from app.customers.locking import locked
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
                      *(f"g.{name} AS g_{name}" for name in GROUP_COLUMNS),
                      "sc.s_amounts", "sc.s_currencies", "sc.s_rates", "sc.s_from", "sc.s_until",
                      "fx.rate AS fx_rate",
                      "al.open_alerts", "cd.previous_checks", "cd.previous_amount"])


def _rate(currency: str, today: str) -> str:
    """The latest rate of `currency` into the account's currency on or before `today`."""
    return f"""SELECT f.rate FROM fx_rates f WHERE f.from_currency = {currency}
      AND f.to_currency = a.currency AND f.as_of <= {today}::date
    ORDER BY f.as_of DESC LIMIT 1"""


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
      AND c.day > {today}::date - {SPIKE_WINDOW_DAYS}) cd ON true
LEFT JOIN credit_groups g ON g.group_id = a.group_id
LEFT JOIN LATERAL (
    SELECT array_agg(s.amount ORDER BY s.security_id) AS s_amounts,
        array_agg(s.currency ORDER BY s.security_id) AS s_currencies,
        array_agg(r.rate ORDER BY s.security_id) AS s_rates,
        array_agg(s.valid_from ORDER BY s.security_id) AS s_from,
        array_agg(s.valid_until ORDER BY s.security_id) AS s_until
    FROM securities s LEFT JOIN LATERAL ({_rate("s.currency", today)}) r
        ON s.currency <> a.currency
    WHERE s.customer_id = a.customer_id AND s.valid_from <= {today}::date
      AND s.valid_until >= {today}::date) sc ON true"""


_STORED_ORDER = """customer_id AS o_customer_id, requested_amount AS o_requested_amount,
    currency AS o_currency, channel AS o_channel, entry_decision_id AS o_entry_decision_id"""

def _snapshot(customer: str, order_id: str, today: str, currency: str) -> str:
    return f"""SELECT {_ACCOUNT}, o.*
FROM (SELECT 1) one
LEFT JOIN accounts a ON a.customer_id = {customer}
LEFT JOIN policies p ON p.risk_class = a.risk_class
{_facts(today)}
LEFT JOIN LATERAL ({_rate(currency, today)}) fx ON {currency} <> a.currency
LEFT JOIN (SELECT {_STORED_ORDER} FROM orders
           WHERE customer_id = {customer} AND order_id = {order_id}) o ON true"""


# $1 customer, $2 order id (null: none), $3 today, $4 the currency of the check (null: none;
# its rate into the account's currency when it is another).
SNAPSHOT = _snapshot("$1::text", "$2::text", "$3", "$4::text")
# The same read for several checks at once (app/credit/batching.py): $1 a JSON array of
# {"c": customer, "o": order id, "k": currency}, $2 today; a row each, in their order. A set
# function whose size the planner cannot see (unlike unnest of an array parameter) keeps one
# generic plan for every batch size instead of planning each batch afresh.
SNAPSHOTS = f"""SELECT s.* FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (c text, o text,
    k text)) WITH ORDINALITY AS v(c, o, k, i)
CROSS JOIN LATERAL ({_snapshot("v.c", "v.o", "$2", "v.k")}) s
ORDER BY v.i"""

# The lock (group, then account: app/customers/locking.py) is a statement of its own: a
# statement that waits for a row lock sees the row as it is once it gets it, but its
# subqueries (overdue facts, alerts, tally) as they were when it started waiting. The read
# after it starts afresh, and sees everything as of the lock.

# $1 customer, $2 order, $3 status, $4 amount, $5 currency, $6 channel, $7 reserve,
# $8 held amount, $9 held count, $10 entry id, $11 expires, $12 now, $13 actor, $14 outcome,
# $15 reasons, $16 effective limit, $17 payment index, $18 inputs, $19 event id, $20 event
# type (null: no event), $21 event data, $22 the amount in the account's currency, $23 the
# rate it was converted at, $24 the account's credit group (null: none). The guard: $25 terms
# version, $26 ledger version, $27 largest exposure + order (approvals) or the open orders
# seen (anything else), $28 the version of the class policy decided under, $29 the group's
# version, $30 the largest group exposure + order (approvals) or the group's open orders seen;
# approvals also: $31 the utilisation threshold exposure + order must stay below (it raised
# no UTILISATION_HIGH), $32 whether it relied on an open UTILISATION_HIGH (so raised none)
# that must still be open; anything else also: $31 the group's open receivables seen.
# Reserve, held amount and $22 are in the account's currency; $4 is the order's own.
_UPDATE_ACCOUNT = """UPDATE accounts SET open_orders = open_orders + $7::numeric,
        held_amount = held_amount + $8::numeric, held_count = held_count + $9::int,
        updated_at = $12::timestamptz
    WHERE customer_id = $1::text AND group_id IS NOT DISTINCT FROM $24::text
      AND ($24::text IS NULL OR EXISTS (SELECT 1 FROM grp)) {guard}
    RETURNING open_receivables AS recv, open_orders - $7::numeric AS before"""
# No account: nothing to update (nor held: a prepay holds nothing); the order and its
# decision are recorded all the same.
_NO_ACCOUNT = ("SELECT 0::numeric AS recv, 0::numeric AS before"
               " WHERE $8::numeric = 0 AND $9::int = 0")
# A member's group row, locked before its account row (app/customers/locking.py): the
# account UPDATE's condition on it is a one-time filter, evaluated before the account is
# scanned. Its figures are the group's before the order; the trigger of migration 0012 then
# adds the order to them.
_GROUP = """SELECT open_receivables AS g_recv, open_orders AS g_orders, credit_limit AS g_limit
    FROM credit_groups WHERE group_id = $24::text {guard} FOR UPDATE"""

# The webhook deliveries of the statement's events (its `ev`), one per active endpoint
# subscribed to the type; WOKE wakes the dispatchers at commit when there are any.
_DELIVERIES = """), dl AS (
    INSERT INTO webhook_deliveries (webhook_id, position, event_id, customer_id, status,
        attempts, due_at, created_at)
    SELECT w.webhook_id, ev.position, ev.event_id, ev.customer_id, 'pending', 0,
        ev.timestamp, ev.timestamp
    FROM ev JOIN webhooks w ON w.status = 'active' AND ev.type = ANY(w.event_types)
    RETURNING 1
)"""
_WOKE = f"CASE WHEN EXISTS (SELECT 1 FROM dl) THEN pg_notify('{WEBHOOKS_CHANNEL}', '') END"

_WRITE = """WITH grp AS ({grp}), acct AS ({acct}), tally AS ({tally}), o AS (
    INSERT INTO orders (customer_id, order_id, status, amount, requested_amount, currency,
        converted_amount, fx_rate, channel, reserved, invoiced, released, entry_decision_id,
        dispatch_decision_id, expires_at, created_at, updated_at)
    SELECT $1::text, $2::text, $3::text, $4::numeric, $4::numeric, $5::text, $22::numeric,
        $23::numeric, $6::text, $7::numeric, 0, false, $10::text, NULL, $11::timestamptz,
        $12::timestamptz, $12::timestamptz FROM acct
), e AS (
    INSERT INTO credit_file (customer_id, entry_id, at, event, actor, order_id, outcome,
        reasons, amount, currency, converted_amount, fx_rate, open_receivables, open_orders,
        effective_limit, available, expires_at, payment_index, inputs, details)
    SELECT $1::text, $10::text, $12::timestamptz, 'credit_check', $13::text, $2::text,
        $14::text, $15::jsonb, $4::numeric, $5::text, $22::numeric, $23::numeric, acct.recv,
        acct.before, $16::numeric, $16::numeric - (acct.recv + acct.before + $7::numeric),
        $11::timestamptz, $17::int, $18::jsonb,
        CASE WHEN $24::text IS NOT NULL THEN jsonb_build_object('group', jsonb_build_object(
            'group_id', $24::text, 'open_receivables', grp.g_recv::text,
            'open_orders', grp.g_orders::text, 'effective_limit', grp.g_limit::text,
            'available', (grp.g_limit - grp.g_recv - grp.g_orders - $7::numeric)::text)) END
    FROM acct LEFT JOIN grp ON true
), ev AS (
    -- A hold or a prepay is an event for the neighbours (app/events/outbox.py), written in
    -- this statement, under the account row lock the UPDATE above holds until it commits.
    INSERT INTO events (event_id, type, customer_id, timestamp, data)
    SELECT $19::text, $20::text, $1::text, $12::timestamptz, $21::jsonb FROM acct
    WHERE $20::text IS NOT NULL
    RETURNING position, event_id, type, customer_id, timestamp
{deliveries}
SELECT recv, before, grp.g_recv, grp.g_orders,
    {woke} AS woke
FROM acct LEFT JOIN grp ON true"""

_VERSIONS = """AND terms_version = $25::int AND ledger_version = $26::int
    AND COALESCE((SELECT p.version FROM policies p WHERE p.risk_class = accounts.risk_class), 0)
        = $28::int"""
# Every check of a known customer counts in its day's tally, whatever its outcome.
_TALLY = """INSERT INTO check_days AS t (customer_id, day, checks, amount)
    SELECT $1::text, ($12::timestamptz AT TIME ZONE 'UTC')::date, 1, $22::numeric FROM acct
    ON CONFLICT (customer_id, day)
    DO UPDATE SET checks = t.checks + 1, amount = t.amount + EXCLUDED.amount"""
_NO_TALLY = "SELECT 1"
_ALERTS_STAND = """AND ($31::numeric IS NULL
        OR open_receivables + open_orders + $7::numeric < $31::numeric)
    AND (NOT $32::bool OR EXISTS (SELECT 1 FROM alerts x WHERE x.customer_id = $1::text
        AND x.kind = 'UTILISATION_HIGH' AND x.status <> 'resolved'))"""


def _write(grp_guard: str, acct: str, tally: str = _TALLY) -> str:
    return _WRITE.format(grp=_GROUP.format(guard=grp_guard), acct=acct, tally=tally,
                         deliveries=_DELIVERIES, woke=_WOKE)


WRITE_LOCKED = _write("", _UPDATE_ACCOUNT.format(guard=""))
WRITE_IF_FITS = _write(
    "AND version = $29::int AND open_receivables + open_orders + $7::numeric <= $30::numeric",
    _UPDATE_ACCOUNT.format(
        guard=f"{_VERSIONS} AND open_receivables + open_orders + $7::numeric <= $27::numeric "
              f"{_ALERTS_STAND}"))
WRITE_IF_UNCHANGED = _write(
    "AND version = $29::int AND open_orders = $30::numeric AND open_receivables = $31::numeric",
    _UPDATE_ACCOUNT.format(guard=f"{_VERSIONS} AND open_orders = $27::numeric"))
WRITE_NO_ACCOUNT = _write("", _NO_ACCOUNT, _NO_TALLY)


# Decisions of ungrouped customers at once (app/credit/batching.py): $1 a JSON array of
# decision_row()s in customer order (the order their rows are locked in), a customer's own in
# the order they came. Each customer's decisions land together, one after another, on one
# UPDATE of its row, or not at all: every one of them must still stand as it would one by
# one, after those ahead of it (`ahead`: the reserves of the approvals before it). An
# approval as WRITE_IF_FITS checks it: room for it on the exposure plus those ahead; a hold
# or a prepay as WRITE_IF_UNCHANGED does: the open orders it was decided on, which only the
# approvals ahead of it may have moved. Then the same rows as WRITE_IF_FITS, a row each; a
# decision that did not land returns no row.
_DECISION_COLUMNS = """c text, o text, s text, a numeric, k text, h text, r numeric, e text,
    x timestamptz, t timestamptz, u text, oc text, rs jsonb, l numeric, pi int, inp jsonb,
    cv numeric, fx numeric, tv int, lv int, pv int, w numeric, b numeric, ao bool,
    hd numeric, hc int, oo numeric, ei text, et text, ed text"""
WRITE_DECISIONS = f"""WITH v AS (
    SELECT *, sum(r) OVER (PARTITION BY c ORDER BY ordinality) - r AS ahead
    FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS ({_DECISION_COLUMNS}))
        WITH ORDINALITY AS v
), need AS (
    -- What a customer's decisions need of its row: the same versions; for its approvals,
    -- room for all of them (the least of each one's headroom after those ahead of it) and
    -- the same for the utilisation threshold, and any UTILISATION_HIGH one relied on still
    -- open; for its holds and prepays, the open orders each saw, less those ahead of it.
    SELECT c, sum(r) AS r, COALESCE(sum(hd), 0) AS hd, COALESCE(sum(hc), 0) AS hc,
        max(t) AS t, min(tv) AS tv, max(tv) AS tv_max, min(lv) AS lv, max(lv) AS lv_max,
        min(pv) AS pv, max(pv) AS pv_max, min(w - ahead - r) AS room,
        min(b - ahead - r) AS below,
        bool_or(ao) AS ao, count(oo) AS unchanged, min(oo - ahead) AS seen,
        max(oo - ahead) AS seen_max
    -- In customer order: the UPDATE below locks the rows in the order it reads these, and
    -- two batches that lock in one order cannot deadlock on each other.
    FROM v GROUP BY c ORDER BY c
), acct AS (
    UPDATE accounts SET open_orders = open_orders + need.r,
        held_amount = held_amount + need.hd, held_count = held_count + need.hc,
        updated_at = need.t
    FROM need
    WHERE accounts.customer_id = need.c AND accounts.group_id IS NULL
      AND terms_version = need.tv AND need.tv = need.tv_max
      AND ledger_version = need.lv AND need.lv = need.lv_max
      AND COALESCE((SELECT p.version FROM policies p
                    WHERE p.risk_class = accounts.risk_class), 0) = need.pv
      AND need.pv = need.pv_max
      AND (need.room IS NULL OR open_receivables + open_orders <= need.room)
      AND (need.below IS NULL OR open_receivables + open_orders < need.below)
      AND (NOT need.ao OR EXISTS (SELECT 1 FROM alerts x WHERE x.customer_id = need.c
          AND x.kind = 'UTILISATION_HIGH' AND x.status <> 'resolved'))
      AND (need.unchanged = 0 OR (open_orders = need.seen AND need.seen = need.seen_max))
    RETURNING need.c, open_receivables AS recv, open_orders - need.r AS before
), landed AS (
    SELECT v.*, acct.recv, acct.before + v.ahead AS before FROM v JOIN acct ON acct.c = v.c
), tally AS (
    INSERT INTO check_days AS t (customer_id, day, checks, amount)
    SELECT c, (t AT TIME ZONE 'UTC')::date, count(*), sum(cv) FROM landed
    GROUP BY c, (t AT TIME ZONE 'UTC')::date
    ON CONFLICT (customer_id, day)
    DO UPDATE SET checks = t.checks + EXCLUDED.checks, amount = t.amount + EXCLUDED.amount
), o AS (
    INSERT INTO orders (customer_id, order_id, status, amount, requested_amount, currency,
        converted_amount, fx_rate, channel, reserved, invoiced, released, entry_decision_id,
        dispatch_decision_id, expires_at, created_at, updated_at)
    SELECT c, o, s, a, a, k, cv, fx, h, r, 0, false, e, NULL, x, t, t FROM landed
), e AS (
    INSERT INTO credit_file (customer_id, entry_id, at, event, actor, order_id, outcome,
        reasons, amount, currency, converted_amount, fx_rate, open_receivables, open_orders,
        effective_limit, available, expires_at, payment_index, inputs, details)
    SELECT c, e, t, 'credit_check', u, o, oc, rs, a, k, cv, fx, recv, before, l,
        l - (recv + before + r), x, pi, inp, NULL
    FROM landed
), ev AS (
    -- The holds' and prepays' events (app/events/outbox.py), under their account row locks
    -- (landed joins the UPDATE's rows): numbered in commit order, as one by one, and a
    -- customer's within the batch in the order they came.
    INSERT INTO events (event_id, type, customer_id, timestamp, data)
    SELECT ei, et, c, t, ed::jsonb FROM landed WHERE et IS NOT NULL ORDER BY ordinality
    RETURNING position, event_id, type, customer_id, timestamp
{_DELIVERIES}
SELECT ordinality AS i, recv, before, (SELECT {_WOKE}) AS woke FROM landed"""


def batchable(plan: CheckPlan) -> bool:
    """Whether WRITE_DECISIONS can write the plan: a decision on the guarded path of an
    ungrouped account (no group row to lock and update) that raises no alert."""
    g = plan.guard
    return (plan.known and g is not None and plan.group is None
            and not plan.alerts  # raising an alert needs the locked pass's transaction
            and (g.within is not None if plan.decision.approved else g.open_orders is not None))


def decision_row(plan: CheckPlan) -> dict[str, Any]:
    """A batchable plan as a row of WRITE_DECISIONS' JSON (amounts as exact strings)."""
    g = plan.guard
    assert g is not None
    d = plan.decision
    row: dict[str, Any] = {
        "c": plan.customer_id, "o": plan.order_id, "s": plan.status, "a": str(plan.amount),
        "k": plan.currency, "h": plan.channel, "r": str(plan.reserve), "e": plan.entry_id,
        "x": None if plan.expires_at is None else plan.expires_at.isoformat(),
        "t": plan.at.isoformat(), "u": plan.actor, "oc": d.outcome.value,
        "rs": _reasons(plan), "l": str(plan.effective_limit), "pi": plan.payment_index,
        "inp": plan.inputs, "cv": str(plan.converted_amount),
        "fx": None if plan.fx_rate is None else str(plan.fx_rate),
        "tv": g.terms_version, "lv": g.ledger_version, "pv": g.policy_version,
        "w": None if g.within is None else str(g.within),
        "b": None if g.below is None else str(g.below),
        # Only an approval relies on an open UTILISATION_HIGH (WRITE_IF_FITS' $32).
        "ao": g.alert_open and g.within is not None}
    if not d.approved:  # an approval's row leaves them out: null
        held = plan.held
        event_id, event_type, event_data = _event(plan)
        row |= {"hd": str(held), "hc": 1 if held else 0, "oo": str(g.open_orders),
                "ei": event_id, "et": event_type, "ed": event_data}
    return row


def _reasons(plan: CheckPlan) -> list[dict[str, str]]:
    return [{"code": r.code.value, "message": r.message} for r in plan.decision.reasons]


def _event(plan: CheckPlan) -> tuple[str | None, str | None, str | None]:
    """(event id, type, data) of the check's event: the held or prepay order, with its
    decision, as GET /v1/orders renders it; nothing for an approval."""
    event_type = EVENT_OF.get(plan.status)
    if event_type is None:
        return None, None, None
    entry = plan.entry()
    order = OrderOut(
        order_id=plan.order_id, customer_id=plan.customer_id, status=plan.status,
        amount=plan.amount, currency=plan.currency, converted_amount=plan.converted_amount,
        fx_rate=plan.fx_rate, channel=plan.channel, reserved=ZERO,
        invoiced=ZERO, released=False, expires_at=None, created_at=plan.at,
        updated_at=plan.at, decisions=[render_decision(entry)])
    return new_id(), event_type.value, encode(order)


EVENT_OF = {"held": EventType.ORDER_HELD, "prepay": EventType.ORDER_PREPAY}


@dataclass(frozen=True)
class Read:
    state: CreditState | None
    existing: ExistingOrder | None
    watch: Watch = field(default_factory=Watch)
    fx_rate: Decimal | None = None  # of the check's currency into the account's, if another


def _existing(row: Any) -> ExistingOrder | None:
    if row is None or row["o_customer_id"] is None:
        return None
    return ExistingOrder(row["o_customer_id"], row["o_requested_amount"], row["o_currency"],
                         row["o_channel"], row["o_entry_decision_id"])


async def read(pg: Any, customer_id: str, order_id: str, today: dt.date, currency: str, *,
               lock: bool) -> Read:
    """The credit state, any order already stored under the id, and the rate of `currency`
    into the account's; with `lock`, inside a transaction, the group and account rows locked
    first."""
    if lock:
        await locked(pg, customer_id)
    return read_from_row(await pg.fetchrow(SNAPSHOT, customer_id, order_id, today, currency),
                         today)


def read_from_row(row: Any, today: dt.date) -> Read:
    """A Read from a row of SNAPSHOT or SNAPSHOTS."""
    return Read(state_from_row(row, today), _existing(row), _watch(row),
                None if row["customer_id"] is None else row["fx_rate"])


def _watch(row: Any) -> Watch:
    if row is None or row["customer_id"] is None:
        return Watch()
    return Watch(frozenset(row["open_alerts"] or ()), int(row["previous_checks"] or 0),
                 row["previous_amount"] or ZERO)


@dataclass(frozen=True)
class Landed:
    """The exposure a written check landed on (before its order), and its group's."""

    exposure: Exposure
    group: Exposure | None


async def write(pg: Any, plan: CheckPlan, seconds: float | None = None) -> Landed | None:
    """Write the plan; what it landed on, or None when its guard no longer holds. `seconds`:
    how long the statement may take (asyncpg cancels it on the server after that)."""
    d = plan.decision
    args: list[Any] = [
        plan.customer_id, plan.order_id, plan.status, plan.amount, plan.currency, plan.channel,
        plan.reserve, plan.held, 1 if plan.held else 0, plan.entry_id, plan.expires_at,
        plan.at, plan.actor, d.outcome.value,
        json_text.dumps(_reasons(plan)),
        plan.effective_limit, plan.payment_index,
        json_text.dumps(plan.inputs) if plan.inputs is not None else None,
        *_event(plan), plan.converted_amount, plan.fx_rate,
        None if plan.group is None else plan.group.group_id]
    g = plan.guard
    if not plan.known:
        sql = WRITE_NO_ACCOUNT
    elif g is None:
        sql = WRITE_LOCKED
    else:
        fits = g.within is not None
        sql = WRITE_IF_FITS if fits else WRITE_IF_UNCHANGED
        seen = g.group_exposure
        args += [g.terms_version, g.ledger_version, g.within if fits else g.open_orders,
                 g.policy_version, g.group_version,
                 g.group_within if fits else (None if seen is None else seen.open_orders)]
        if fits:
            args += [g.below, g.alert_open]
        else:
            args.append(None if seen is None else seen.open_receivables)
    row = await (pg.fetchrow(sql, *args) if seconds is None
                 else pg.fetchrow(sql, *args, timeout=seconds))
    if row is None:
        return None
    group = None if row["g_recv"] is None else Exposure(row["g_recv"], row["g_orders"])
    return Landed(Exposure(row["recv"], row["before"]), group)
