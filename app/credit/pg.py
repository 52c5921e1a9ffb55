"""The reserving check's two statements on PostgreSQL, as plain SQL on the asyncpg connection.

This is the hot path of the service, so it skips SQLAlchemy's statement building: one read
(account, class policy, overdue facts and any order already stored under the order_id) and
one write (account aggregates, the order and its decision in data-modifying CTEs), both
prepared once per connection by asyncpg. SQLite runs the same steps through SQLAlchemy
(app/credit/writer.py, app/credit/state.py), and the tests hold both to the same behaviour.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from app.credit.state import CreditState, ExistingOrder, state_from_row
from app.credit.writer import CheckWrite, Written

_ACCOUNT = """a.customer_id, a.name, a.currency, a.credit_limit, a.risk_class,
    a.payment_terms_days, a.blocked, a.block_reason, a.temp_limit_amount,
    a.temp_limit_expires_on, a.open_receivables, a.open_orders, a.held_amount, a.held_count,
    a.terms_version, a.ledger_version, a.created_at, a.updated_at,
    p.prepay_required AS p_prepay_required, p.hold_band AS p_hold_band,
    p.max_days_past_due AS p_max_days_past_due,
    p.prepay_days_past_due AS p_prepay_days_past_due,
    p.overdue_tolerance AS p_overdue_tolerance, p.version AS p_version,
    od.oldest_due_on, od.overdue_amount"""



def _overdue(today: str) -> str:
    # Only positive open items, by due date, from a partial index that carries the open
    # amount: the cost does not grow with the number of items that are not overdue.
    return f"""LEFT JOIN LATERAL (
    SELECT min(i.due_on) AS oldest_due_on, sum(i.open_amount) AS overdue_amount
    FROM open_items i WHERE i.customer_id = a.customer_id AND i.open_amount > 0
      AND i.due_on < {today}::date) od ON true"""


SNAPSHOT = f"""SELECT {_ACCOUNT},
    o.customer_id AS o_customer_id, o.requested_amount AS o_requested_amount,
    o.currency AS o_currency, o.channel AS o_channel,
    o.entry_decision_id AS o_entry_decision_id
FROM (SELECT 1) one
LEFT JOIN accounts a ON a.customer_id = $1
LEFT JOIN policies p ON p.risk_class = a.risk_class
{_overdue("$3")}
LEFT JOIN orders o ON o.customer_id = $1 AND o.order_id = $2"""

LOCKED = f"""SELECT {_ACCOUNT}
FROM accounts a
LEFT JOIN policies p ON p.risk_class = a.risk_class
{_overdue("$2")}
WHERE a.customer_id = $1
FOR UPDATE OF a"""

ORDER = """SELECT customer_id AS o_customer_id, requested_amount AS o_requested_amount,
    currency AS o_currency, channel AS o_channel, entry_decision_id AS o_entry_decision_id
FROM orders WHERE order_id = $1"""

# $1 customer, $2 order, $3 status, $4 amount, $5 currency, $6 channel, $7 reserve,
# $8 held amount, $9 held count, $10 entry id, $11 expires, $12 now, $13 actor, $14 outcome,
# $15 reasons, $16 effective limit, then the guard: $17 terms version, $18 ledger version,
# $19 largest exposure + order (approvals) or the open orders seen (anything else),
# $20 the version of the class policy decided under.
_WRITE = """WITH acct AS (
    UPDATE accounts SET open_orders = open_orders + $7::numeric,
        held_amount = held_amount + $8::numeric, held_count = held_count + $9::int,
        updated_at = $12::timestamptz
    WHERE customer_id = $1::text {guard}
    RETURNING open_receivables AS recv, open_orders - $7::numeric AS before
), o AS (
    INSERT INTO orders (customer_id, order_id, status, amount, requested_amount, currency,
        channel, reserved, invoiced, released, entry_decision_id, dispatch_decision_id,
        expires_at, created_at, updated_at)
    SELECT $1::text, $2::text, $3::text, $4::numeric, $4::numeric, $5::text, $6::text,
        $7::numeric, 0, false, $10::text, NULL, $11::timestamptz, $12::timestamptz,
        $12::timestamptz FROM acct
), e AS (
    INSERT INTO credit_file (customer_id, entry_id, at, event, actor, order_id, outcome,
        reasons, amount, currency, open_receivables, open_orders, effective_limit, available,
        expires_at)
    SELECT $1::text, $10::text, $12::timestamptz, 'credit_check', $13::text, $2::text,
        $14::text, $15::jsonb, $4::numeric, $5::text, acct.recv, acct.before,
        $16::numeric, $16::numeric - (acct.recv + acct.before + $7::numeric),
        $11::timestamptz FROM acct
)
SELECT recv, before FROM acct"""

_VERSIONS = """AND terms_version = $17::int AND ledger_version = $18::int
    AND COALESCE((SELECT p.version FROM policies p WHERE p.risk_class = accounts.risk_class), 0)
        = $20::int"""
WRITE_LOCKED = _WRITE.format(guard="")
WRITE_IF_FITS = _WRITE.format(
    guard=f"{_VERSIONS} AND open_receivables + open_orders + $7::numeric <= $19::numeric")
WRITE_IF_UNCHANGED = _WRITE.format(guard=f"{_VERSIONS} AND open_orders = $19::numeric")

WRITE_UNKNOWN = """WITH o AS (
    INSERT INTO orders (customer_id, order_id, status, amount, requested_amount, currency,
        channel, reserved, invoiced, released, entry_decision_id, dispatch_decision_id,
        expires_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $4, $5, $6, 0, 0, false, $7, NULL, NULL, $8, $8)
)
INSERT INTO credit_file (customer_id, entry_id, at, event, actor, order_id, outcome, reasons,
    amount, currency, open_receivables, open_orders, effective_limit, available)
VALUES ($1, $7, $8, 'credit_check', $9, $2, $10, $11::jsonb, $4, $5, 0, 0, 0, 0)"""


def _existing(row: Any) -> ExistingOrder | None:
    if row is None or row["o_customer_id"] is None:
        return None
    return ExistingOrder(row["o_customer_id"], row["o_requested_amount"], row["o_currency"],
                         row["o_channel"], row["o_entry_decision_id"])


async def snapshot(pg: Any, customer_id: str, order_id: str, today: dt.date
                   ) -> tuple[CreditState | None, ExistingOrder | None]:
    """Without locking: the credit state and any order already stored under the id."""
    row = await pg.fetchrow(SNAPSHOT, customer_id, order_id, today)
    return state_from_row(row, today), _existing(row)


async def locked(pg: Any, customer_id: str, order_id: str, today: dt.date
                 ) -> tuple[CreditState | None, ExistingOrder | None]:
    """Inside a transaction: lock the account row, then read state and any stored order."""
    row = await pg.fetchrow(LOCKED, customer_id, today)
    order = await pg.fetchrow(ORDER, order_id)
    return (state_from_row(row, today) if row is not None else None), _existing(order)


async def write(pg: Any, w: CheckWrite) -> Written | None:
    """The write of a known customer's check; None when its guard no longer holds."""
    o, e = w.order, w.entry
    args = [o["customer_id"], o["order_id"], o["status"], o["amount"], o["currency"],
            o["channel"], w.reserve, w.held, 1 if w.held else 0, e["entry_id"],
            o["expires_at"], o["created_at"], e["actor"], e["outcome"],
            json.dumps(e["reasons"]), w.effective_limit]
    g = w.guard
    if g is None:
        sql = WRITE_LOCKED
    else:
        sql = WRITE_IF_FITS if g.within is not None else WRITE_IF_UNCHANGED
        args += [g.terms_version, g.ledger_version,
                 g.within if g.within is not None else g.open_orders, g.policy_version]
    row = await pg.fetchrow(sql, *args)
    return Written(row["recv"], row["before"]) if row is not None else None


async def write_unknown(pg: Any, order: dict[str, Any], entry: dict[str, Any]) -> None:
    """The order of a customer without an account, recorded as prepay."""
    await pg.execute(WRITE_UNKNOWN, order["customer_id"], order["order_id"], order["status"],
                     order["amount"], order["currency"], order["channel"],
                     order["entry_decision_id"], order["created_at"], entry["actor"],
                     entry["outcome"], json.dumps(entry["reasons"]))
