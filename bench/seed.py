"""Seed the benchmark database: 100,000 credit accounts with open items, orders and history.

Rows are generated in Python (deterministic, seeded PRNG) and loaded with COPY through
asyncpg, straight into the app's own tables. Every column the app reads is filled, and the
maintained aggregates on `accounts` (open_receivables, open_orders, held_amount, held_count)
are summed from exactly the line items written, so `creditgate reconcile` finds no drift.

Who is who (customer ids are C000001 .. C<n>, all EUR):
- most customers: 0-6 open invoices (some partly paid, a few credit notes, a few fully paid
  invoices left at open 0), 0-3 approved orders, sometimes a shipped, held or cancelled
  order, and limits of 100k-1M EUR, several times their exposure, so that random checks of
  10-1,000 EUR approve. About 5% do not approve on purpose (CCC class, blocked, or an
  invoice more than 30 / 90 days past due) so the mix is realistic; the bench measures
  the approve path and reports the approve share it actually got.
- BIG customers: 10,000 open items each (2% overdue by 1-25 days, the rest not yet due).
- BIG_CURRENT customers: 10,000 open items each, none overdue (isolates the item count).
- TEN customers: exactly 10 open items (1 overdue by 1-25 days), the same otherwise.
- HOT customer: a 10^12 limit so thousands of checks per second never exhaust it.
- CACHED customers: the small fixed set used for dry runs and exposure reads.
- HOLDING customers: 4 open items, one 31-60 days past due, so every check of theirs is
  held (OVERDUE_RECEIVABLES) and writes an order.held event: the path of the 5% of random
  customers that do not approve, on its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import sys
import time
from decimal import Decimal
from typing import Any

import asyncpg

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

BIG = ["C000100", "C000200", "C000300", "C000400", "C000500"]
BIG_CURRENT = ["C000600", "C000610", "C000620", "C000630", "C000640"]
TEN = ["C000101", "C000201", "C000301", "C000401", "C000501"]
HOT = "C000777"
CACHED = [f"C{1000 + i:06d}" for i in range(1, 21)]
HOLDING = [f"C{3000 + i:06d}" for i in range(1, 101)]

RISK_WEIGHTS = [("AAA", 5), ("AA", 10), ("A", 25), ("BBB", 30), ("BB", 15), ("B", 10),
                ("unrated", 4), ("CCC", 1)]
LIMITS = [Decimal(v) for v in ("100000", "150000", "250000", "500000", "1000000")]
TERMS = [14, 30, 30, 30, 45, 60]
ACTOR = "bench-seed"
WITHIN = [{"code": "WITHIN_LIMIT", "message": "the order fits within the available credit"}]
HELD = [{"code": "OVER_LIMIT", "message": "exposure exceeds the effective limit"}]
CENT = Decimal("0.01")


def customer_id(i: int) -> str:
    return f"C{i:06d}"


def ulid(at: dt.datetime) -> str:
    """A ULID-shaped id (48-bit ms + 80 random bits, Crockford base32) for time `at`."""
    value = int(at.timestamp() * 1000) << 80 | secrets.randbits(80)
    out = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


class Seed:
    """Generates all rows in memory; aggregates are accumulated per customer as rows are made."""

    def __init__(self, n_customers: int, rng: random.Random) -> None:
        self.n = n_customers
        self.rng = rng
        self.now = dt.datetime.now(dt.UTC)
        self.today = self.now.date()
        self.accounts: list[tuple[Any, ...]] = []
        self.items: list[tuple[Any, ...]] = []
        self.orders: list[tuple[Any, ...]] = []
        self.entries: list[tuple[Any, ...]] = []
        self.order_seq = 0
        self.item_seq = 0
        self.risk = [r for r, w in RISK_WEIGHTS for _ in range(w)]

    def money(self, lo: int, hi: int) -> Decimal:
        """A random amount between lo and hi EUR, in cents."""
        return Decimal(self.rng.randint(lo * 100, hi * 100)) * CENT

    # -- line items ---------------------------------------------------------------------

    def item(self, cid: str, amount: Decimal, due_in: int, terms: int, *, paid: Decimal = Decimal(0)
             ) -> Decimal:
        self.item_seq += 1
        due_on = self.today + dt.timedelta(days=due_in)
        issued_on = due_on - dt.timedelta(days=terms)
        created = dt.datetime.combine(issued_on, dt.time(6), dt.UTC)
        created = min(created, self.now)
        open_amount = amount - paid
        self.items.append((cid, f"INV-{self.item_seq:08d}", amount, open_amount, "EUR", due_on,
                           issued_on, None, "snapshot", Decimal(0), None, created, self.now))
        return open_amount

    def order(self, cid: str, status: str, amount: Decimal, limit: Decimal,
              recv: Decimal, reserved_before: Decimal) -> tuple[Decimal, Decimal]:
        """Adds an order and its decision entries; returns (reserved, held amount)."""
        self.order_seq += 1
        oid = f"SO-{self.order_seq:08d}"
        created = self.now - dt.timedelta(days=self.rng.randint(0, 20),
                                          seconds=self.rng.randint(0, 86_399))
        approved = status in ("approved", "shipped", "cancelled")
        expires = created + dt.timedelta(days=30) if approved else None
        reserved = amount if status in ("approved", "shipped") else Decimal(0)
        held = amount if status == "held" else Decimal(0)
        entry_id = ulid(created)
        dispatch_id = None
        self.entries.append((
            cid, entry_id, created, "credit_check", ACTOR, oid,
            "approve" if approved else "hold", json.dumps(WITHIN if approved else HELD),
            amount, "EUR", recv, reserved_before, limit,
            limit - recv - reserved_before - (amount if approved else 0), expires, None, None))
        if status == "shipped":
            shipped_at = created + dt.timedelta(hours=self.rng.randint(1, 48))
            shipped_at = min(shipped_at, self.now)
            dispatch_id = ulid(shipped_at)
            self.entries.append((
                cid, dispatch_id, shipped_at, "dispatch_check", ACTOR, oid, "approve",
                json.dumps(WITHIN), amount, "EUR", recv, reserved_before + amount, limit,
                limit - recv - reserved_before - amount, expires, None, None))
        if status == "cancelled":
            self.entries.append((
                cid, ulid(created + dt.timedelta(minutes=5)), created + dt.timedelta(minutes=5),
                "order_cancelled", ACTOR, oid, None, None, None, None, None, None, None, None,
                None, json.dumps({"released": str(amount)}), None))
        self.orders.append((cid, oid, status, amount, amount, "EUR", amount, "erp", reserved,
                            Decimal(0), False, entry_id, dispatch_id, expires, created, created))
        return reserved, held

    # -- accounts -----------------------------------------------------------------------

    def account(self, i: int) -> None:
        rng = self.rng
        cid = customer_id(i)
        terms = rng.choice(TERMS)
        limit = rng.choice(LIMITS)
        risk = rng.choice(self.risk)
        blocked = rng.random() < 0.005
        temp_amount = temp_until = None
        if rng.random() < 0.02:
            temp_amount, temp_until = Decimal(25000), self.today + dt.timedelta(days=30)
        recv = Decimal(0)
        if cid in BIG or cid in BIG_CURRENT:
            risk, blocked, limit = "A", False, Decimal(10) ** 9
            for k in range(10_000):
                overdue = k % 50 == 0 and cid in BIG
                due = -rng.randint(1, 25) if overdue else rng.randint(1, 90)
                recv += self.item(cid, self.money(100, 900), due, terms)
        elif cid in HOLDING:
            risk, blocked, limit = "A", False, Decimal(10) ** 9
            recv += self.item(cid, self.money(500, 3000), -rng.randint(31, 60), terms)
            for _ in range(3):
                recv += self.item(cid, self.money(100, 900), rng.randint(1, 90), terms)
        elif cid in TEN or cid == HOT or cid in CACHED:
            risk, blocked = "A", False
            limit = Decimal(10) ** 12 if cid == HOT else Decimal(10) ** 9
            for k in range(10 if cid in TEN else 4):
                due = -rng.randint(1, 25) if k == 0 else rng.randint(1, 90)
                recv += self.item(cid, self.money(100, 900), due, terms)
        else:
            for _ in range(rng.randint(0, 6)):
                paid = Decimal(0)
                amount = self.money(100, 8000)
                if rng.random() < 0.1:
                    paid = (amount / 2).quantize(CENT)
                recv += self.item(cid, amount, rng.randint(-25, 60), terms, paid=paid)
            roll = rng.random()
            if roll < 0.03:      # hold: an invoice 31-60 days past due
                recv += self.item(cid, self.money(200, 3000), -rng.randint(31, 60), terms)
            elif roll < 0.035:   # prepay: 91-150 days past due
                recv += self.item(cid, self.money(200, 3000), -rng.randint(91, 150), terms)
            if rng.random() < 0.02:   # an unapplied credit note (negative open item)
                recv += self.item(cid, -self.money(50, 500), rng.randint(-10, 30), terms)
            if rng.random() < 0.2:    # paid invoices stay in the table at open 0
                for _ in range(rng.randint(1, 2)):
                    amount = self.money(100, 5000)
                    self.item(cid, amount, rng.randint(-60, -1), terms, paid=amount)
        reserved = held = Decimal(0)
        held_count = 0
        special = [*BIG, *BIG_CURRENT, *TEN, *HOLDING]
        n_orders = rng.randint(0, 3) if cid not in special else 2
        statuses = ["approved"] * n_orders
        if cid not in [*special, HOT, *CACHED]:
            if rng.random() < 0.10:
                statuses.append("shipped")
            if rng.random() < 0.01:
                statuses.append("held")
            if rng.random() < 0.05:
                statuses.append("cancelled")
        for status in statuses:
            r, h = self.order(cid, status, self.money(50, 5000), limit, recv, reserved)
            reserved += r
            held += h
            held_count += 1 if h else 0
        created = self.now - dt.timedelta(days=rng.randint(60, 2000))
        self.entries.append((
            cid, ulid(created), created, "account_created", ACTOR, None, None, None, None, None,
            None, None, None, None, None,
            json.dumps({"credit_limit": str(limit), "risk_class": risk, "currency": "EUR"}),
            "imported from ERP"))
        self.accounts.append((
            cid, f"Customer {i:06d} GmbH", "EUR", limit, risk, terms, blocked,
            "insolvency filing" if blocked else None, temp_amount, temp_until,
            recv, reserved, held, held_count, 1 + rng.randint(0, 3), 1 + rng.randint(0, 20),
            created, self.now))

    def generate(self) -> None:
        for i in range(1, self.n + 1):
            self.account(i)


ACCOUNT_COLS = ["customer_id", "name", "currency", "credit_limit", "risk_class",
                "payment_terms_days", "blocked", "block_reason", "temp_limit_amount",
                "temp_limit_expires_on", "open_receivables", "open_orders", "held_amount",
                "held_count", "terms_version", "ledger_version", "created_at", "updated_at"]
ITEM_COLS = ["customer_id", "invoice_id", "amount", "open_amount", "currency", "due_on",
             "issued_on", "order_id", "origin", "reservation_consumed", "response",
             "created_at", "updated_at"]
ORDER_COLS = ["customer_id", "order_id", "status", "amount", "requested_amount", "currency",
              "converted_amount", "channel", "reserved", "invoiced", "released",
              "entry_decision_id", "dispatch_decision_id", "expires_at", "created_at",
              "updated_at"]
ENTRY_COLS = ["customer_id", "entry_id", "at", "event", "actor", "order_id", "outcome",
              "reasons", "amount", "currency", "open_receivables", "open_orders",
              "effective_limit", "available", "expires_at", "details", "note"]

# The daily tally of credit checks (what ORDER_SPIKE compares an order with), as the checks'
# own writes would have kept it for the seeded history. Left empty, the table is analysed as
# empty and every pooled connection's generic plan of the check's read scans it in full; with
# autovacuum off (as on the bench machine) nothing re-analyses it while the load fills it,
# and the read cost 8x as many buffers by the end of a run (measured: 16 -> 128 per read).
TALLY_SQL = """
INSERT INTO check_days (customer_id, day, checks, amount)
SELECT customer_id, (at AT TIME ZONE 'UTC')::date, count(*), sum(amount)
FROM credit_file WHERE event = 'credit_check'
GROUP BY customer_id, (at AT TIME ZONE 'UTC')::date
"""

FLOOR_DDL = """
DROP TABLE IF EXISTS bench_floor_orders;
DROP TABLE IF EXISTS bench_floor_accounts;
CREATE TABLE bench_floor_accounts (
    customer_id varchar(64) PRIMARY KEY,
    credit_limit numeric(20, 4) NOT NULL,
    reserved numeric(20, 4) NOT NULL
);
CREATE TABLE bench_floor_orders (
    order_id varchar(64) PRIMARY KEY,
    customer_id varchar(64) NOT NULL,
    amount numeric(20, 4) NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO bench_floor_accounts (customer_id, credit_limit, reserved)
    SELECT customer_id, credit_limit + coalesce(temp_limit_amount, 0),
           open_receivables + open_orders
    FROM accounts;
"""


async def seed(dsn: str, n_customers: int) -> dict[str, int]:
    started = time.perf_counter()
    s = Seed(n_customers, random.Random(20261123))
    s.generate()
    generated = time.perf_counter() - started
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("accounts", records=s.accounts,
                                             columns=ACCOUNT_COLS)
            await conn.copy_records_to_table("open_items", records=s.items, columns=ITEM_COLS)
            await conn.copy_records_to_table("orders", records=s.orders, columns=ORDER_COLS)
            await conn.copy_records_to_table("credit_file", records=s.entries,
                                             columns=ENTRY_COLS)
            await conn.execute(TALLY_SQL)
            tally = await conn.fetchval("SELECT count(*) FROM check_days")
            await conn.execute(FLOOR_DDL)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    counts = {"accounts": len(s.accounts), "open_items": len(s.items),
              "orders": len(s.orders), "credit_file": len(s.entries),
              "check_days": int(tally)}
    print(f"seeded {counts} (generate {generated:.1f}s, "
          f"total {time.perf_counter() - started:.1f}s)", flush=True)
    return counts


if __name__ == "__main__":
    asyncio.run(seed(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000))
