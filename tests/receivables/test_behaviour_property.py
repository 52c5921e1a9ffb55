"""Property: for random ledger histories (invoices with issue and due dates, payments with
received_on, to an invoice or oldest-first, over- and underpaying, open-item snapshots with
credit items), the payment-behaviour figures the API returns equal a recomputation, written
here from DESIGN 2.2 / 2.9 alone, from the line items the test itself wrote; the account's
payment index (exposure) is the endpoint's, and reconcile finds no drift.

Like tests/test_stateful.py, Hypothesis runs in a worker thread and each API call is
submitted to the session loop the app lives on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import clock
from app.db.engine import Database
from app.reconcile import find_drift
from app.settings import Settings
from tests.api import Api
from tests.cleanup import clean

ZERO = Decimal(0)
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("300"), places=2)
# Days before today, aimed at the edges of the windows (365 days, 90 days, today) as often
# as anywhere else in them.
PAST = st.sampled_from([-366, -365, -364, -90, -89, -1, 0]) | st.integers(-500, 0)
TERMS = st.sampled_from([-1, 0, 1, 30]) | st.integers(-10, 90)
# (days beyond terms, index) as DESIGN 2.2 lists them
LINE = [(Decimal(-30), Decimal(100)), (Decimal(-20), Decimal(90)), (Decimal(0), Decimal(80)),
        (Decimal(30), Decimal(50)), (Decimal(120), Decimal(20)), (Decimal(180), Decimal(1))]


@dataclass
class Item:
    open: Decimal
    due: dt.date
    issued: dt.date | None


@dataclass(frozen=True)
class Applied:
    amount: Decimal
    received: dt.date
    due: dt.date
    issued: dt.date | None


def q(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def index_of(d: Decimal | None) -> int | None:
    if d is None:
        return None
    if d <= LINE[0][0]:
        return 100
    if d > LINE[-1][0]:
        return 1
    for (d0, p0), (d1, p1) in itertools.pairwise(LINE):
        if d0 <= d <= d1:
            return int(q(p0 + (d - d0) * (p1 - p0) / (d1 - d0), "1"))
    raise AssertionError(d)


def expected(items: dict[str, Item], applied: list[Applied],
             invoiced: list[tuple[Decimal, dt.date]], today: dt.date) -> dict[str, Any]:
    """The figures, straight from the definitions, as Decimals (None where null)."""
    start = today - dt.timedelta(days=364)
    window = [a for a in applied if start <= a.received <= today]
    overdue = [i for i in items.values() if i.open > 0 and i.due < today]
    weigh = [(a.amount, (a.received - a.due).days) for a in window]
    weigh += [(i.open, (today - i.due).days) for i in overdue]
    total = sum((w for w, _ in weigh), ZERO)
    dbt = q(sum((w * d for w, d in weigh), ZERO) / total, "0.01") if total else None
    paid = sum((a.amount for a in window), ZERO)
    dated = [a for a in window if a.issued is not None]
    dated_amount = sum((a.amount for a in dated), ZERO)
    to_pay = sum((a.amount * (a.received - a.issued).days for a in dated
                  if a.issued is not None), ZERO)
    on_time = sum((a.amount for a in window if a.received <= a.due), ZERO)
    lates = [(a.received - a.due).days for a in window] + [(today - i.due).days
                                                          for i in overdue]
    positive = sum((i.open for i in items.values() if i.open > 0), ZERO)
    not_due = sum((i.open for i in items.values() if i.open > 0 and i.due >= today), ZERO)
    inv90 = sum((a for a, day in invoiced if today - dt.timedelta(days=89) <= day <= today),
                ZERO)
    inv365 = [(a, day) for a, day in invoiced if start <= day <= today]
    months: dict[tuple[int, int], Decimal] = {}
    for a, day in inv365:
        months[(day.year, day.month)] = months.get((day.year, day.month), ZERO) + a
    dso = q(positive / inv90 * 90, "0.01") if inv90 else None
    best = q(not_due / inv90 * 90, "0.01") if inv90 else None
    return {
        "payment_index": index_of(dbt), "days_beyond_terms": dbt,
        "average_days_to_pay": q(to_pay / dated_amount, "0.01") if dated_amount else None,
        "paid_on_time_share": q(on_time / paid, "0.0001") if paid else None,
        "max_days_late": q(Decimal(max([0, *lates])), "0.01"), "amount_paid_365d": paid,
        "dso_days": dso, "best_possible_dso_days": best,
        "average_days_delinquent": None if dso is None or best is None else dso - best,
        "invoiced_90d": inv90, "invoiced_365d": sum((a for a, _ in inv365), ZERO),
        "highest_monthly_invoiced": max(months.values(), default=ZERO),
    }


DAYS_FIGURES = ("days_beyond_terms", "average_days_to_pay", "max_days_late", "dso_days",
                "best_possible_dso_days", "average_days_delinquent")


def as_seen(body: dict[str, Any]) -> dict[str, Any]:
    """The response with strings as Decimals; days figures must show exactly 2 decimals and
    the share exactly 4."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if value is None or key == "payment_index":
            out[key] = value
            continue
        assert isinstance(value, str), (key, value)
        if key in DAYS_FIGURES:
            assert len(value.partition(".")[2]) == 2, (key, value)
        if key == "paid_on_time_share":
            assert len(value.partition(".")[2]) == 4, (key, value)
        out[key] = Decimal(value)
    return out


HYPOTHESIS = settings(max_examples=40, deadline=None, derandomize=False, print_blob=True,
                      suppress_health_check=[HealthCheck.too_slow,
                                             HealthCheck.function_scoped_fixture])


async def test_behaviour_equals_a_recomputation_from_the_line_items(
        api: Api, db: Database, settings: Settings) -> None:
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def ok(r: Any) -> dict[str, Any]:
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    @HYPOTHESIS
    @given(data=st.data())
    def history(data: st.DataObject) -> None:
        run(clean(db, settings))
        ok(run(api.put("/v1/customers/C1", {"name": "C1", "currency": "EUR",
                                            "credit_limit": "100000"})))
        with decimal.localcontext() as ctx:
            ctx.prec = 60
            today = clock.today()
            items: dict[str, Item] = {}
            applied: list[Applied] = []
            invoiced: list[tuple[Decimal, dt.date]] = []
            steps = data.draw(st.lists(st.sampled_from(["invoice", "invoice", "pay", "pay",
                                                        "pay", "snapshot"]),
                                       min_size=1, max_size=12))
            for n, step in enumerate(steps):
                if step == "invoice":
                    amount = data.draw(AMOUNTS)
                    issued_in = data.draw(st.none() | PAST)
                    issued = None if issued_in is None else today + dt.timedelta(issued_in)
                    due = (issued or today) + dt.timedelta(data.draw(TERMS))
                    body = {"invoice_id": f"I{n}", "customer_id": "C1", "amount": str(amount),
                            "currency": "EUR", "due_on": due.isoformat()}
                    if issued is not None:
                        body["issued_on"] = issued.isoformat()
                    ok(run(api.post("/v1/invoices", body, role="ledger")))
                    items[f"I{n}"] = Item(amount, due, issued)
                    invoiced.append((amount, issued or today))
                elif step == "pay":
                    amount = data.draw(AMOUNTS)
                    target = data.draw(st.none() | st.sampled_from(sorted(items))
                                       if items else st.none())
                    received_in = data.draw(st.none() | PAST)
                    received = today + dt.timedelta(received_in or 0)
                    body = {"payment_id": f"P{n}", "customer_id": "C1", "amount": str(amount),
                            "currency": "EUR"}
                    if target is not None:
                        body["invoice_id"] = target
                    if received_in is not None:
                        body["received_on"] = received.isoformat()
                    result = ok(run(api.post("/v1/payments", body, role="ledger")))
                    for part in result["applied"]:
                        item = items[part["invoice_id"]]
                        applied.append(Applied(Decimal(part["amount"]), received, item.due,
                                               item.issued))
                        item.open -= Decimal(part["amount"])
                else:
                    snapshot: dict[str, Item] = {}
                    for invoice_id in sorted(items):
                        if data.draw(st.booleans()):
                            old = items[invoice_id]
                            amount = data.draw(st.sampled_from([old.open, Decimal("5")])
                                               | AMOUNTS)
                            if amount == ZERO:
                                continue
                            due = old.due + dt.timedelta(data.draw(st.integers(-20, 20)))
                            snapshot[invoice_id] = Item(amount, due, old.issued)
                    if data.draw(st.booleans()):  # a credit note
                        snapshot[f"CN{n}"] = Item(-data.draw(AMOUNTS), today + dt.timedelta(
                            data.draw(st.integers(-200, 30))), None)
                    if data.draw(st.booleans()):  # an item only the ERP knew about
                        snapshot[f"S{n}"] = Item(data.draw(AMOUNTS), today + dt.timedelta(
                            data.draw(st.integers(-200, 30))), None)
                    body = {"items": [{"invoice_id": i, "amount": str(it.open),
                                       "currency": "EUR", "due_on": it.due.isoformat()}
                                      for i, it in snapshot.items()]}
                    ok(run(api.put("/v1/customers/C1/open-items", body, role="ledger")))
                    for invoice_id, item in items.items():
                        if invoice_id not in snapshot:
                            item.open = ZERO
                    for invoice_id, item in snapshot.items():
                        if invoice_id in items:
                            items[invoice_id].open, items[invoice_id].due = item.open, item.due
                        else:
                            items[invoice_id] = item
            want = expected(items, applied, invoiced, today)
            got = as_seen(ok(run(api.get("/v1/customers/C1/payment-behaviour",
                                         role="warehouse"))))
            assert got == want, f"\nAPI   {got}\nmodel {want}"
            assert ok(run(api.get("/v1/customers/C1/exposure")))["payment_index"] \
                == want["payment_index"]
            assert run(_drift(db)) == []

    await asyncio.to_thread(history)


async def _drift(db: Database) -> list[Any]:
    async with db.begin() as conn:
        return await find_drift(conn)
