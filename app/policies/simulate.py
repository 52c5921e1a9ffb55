"""What would a policy change have done? Every entry credit check of a class in a window of
days, decided again on its own stored inputs under the proposed parameters. Changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.codec import state_from_doc
from app.credit.policy import Decision, Outcome, PolicyParams, evaluate
from app.credit_file.entries import Event
from app.credit_file.tables import credit_file
from app.money import ZERO

MAX_CHANGED = 100
BATCH = 1000


@dataclass
class Tally:
    approve: int = 0
    hold: int = 0
    prepay: int = 0
    amount_approved: Decimal = ZERO

    def add(self, outcome: str, amount: Decimal) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == Outcome.APPROVE.value:
            self.amount_approved += amount


@dataclass
class Changed:
    decision_id: str
    order_id: str
    customer_id: str
    amount: Decimal
    was: str
    now: str
    reasons: list[dict[str, str]]


@dataclass
class Simulation:
    decisions: int = 0
    current: Tally = field(default_factory=Tally)
    proposed: Tally = field(default_factory=Tally)
    changed: list[Changed] = field(default_factory=list)
    changed_count: int = 0


def redecide(inputs: dict[str, Any], amount: Decimal, policy: PolicyParams) -> Decision:
    """A stored decision's inputs, decided again under `policy` (pure)."""
    state = state_from_doc(inputs)
    today = dt.date.fromisoformat(inputs["today"])
    return evaluate(state.terms, policy, state.account.exposure, state.overdue, amount,
                    today, payment_index=state.account.payment_index, group=state.group)


def simulate_rows(rows: Iterator[Any], policy: PolicyParams) -> Simulation:
    """The simulation over stored check entries (pure: no I/O)."""
    result = Simulation()
    for row in rows:
        # What the decision was taken on: the amount in the account's currency.
        amount = row.amount if row.converted_amount is None else row.converted_amount
        decision = redecide(row.inputs, amount, policy)
        result.decisions += 1
        result.current.add(row.outcome, amount)
        result.proposed.add(decision.outcome.value, amount)
        if decision.outcome.value != row.outcome:
            result.changed_count += 1
            if len(result.changed) < MAX_CHANGED:
                result.changed.append(Changed(
                    row.entry_id, row.order_id, row.customer_id, row.amount, row.outcome,
                    decision.outcome.value,
                    [{"code": r.code.value, "message": r.message} for r in decision.reasons]))
    return result


async def simulate(conn: AsyncConnection, risk_class: str, policy: PolicyParams,
                   start: dt.date, end: dt.date) -> Simulation:
    """Re-decide the window's entry credit checks of customers who were of `risk_class`."""
    result = Simulation()
    after: tuple[dt.datetime, str, str] | None = None
    lower = dt.datetime.combine(start, dt.time(), dt.UTC)
    upper = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    while True:
        rows = list(await conn.execute(_page(risk_class, lower, upper, after)))
        batch = simulate_rows(iter(rows), policy)
        _merge(result, batch)
        if len(rows) < BATCH:
            return result
        last = rows[-1]
        after = (last.at, last.customer_id, last.entry_id)


def _page(risk_class: str, lower: dt.datetime, upper: dt.datetime,
          after: tuple[dt.datetime, str, str] | None) -> Any:
    f = credit_file.c
    stmt = (select(f.entry_id, f.order_id, f.customer_id, f.amount, f.converted_amount,
                   f.outcome, f.inputs, f.at)
            .where(f.event == Event.CREDIT_CHECK, f.at >= lower, f.at < upper,
                   f.inputs.is_not(None),
                   f.inputs["account"]["risk_class"].astext == risk_class))
    if after is not None:
        at, customer_id, entry_id = after
        stmt = stmt.where(or_(f.at > at, and_(f.at == at, or_(
            f.customer_id > customer_id,
            and_(f.customer_id == customer_id, f.entry_id > entry_id)))))
    return stmt.order_by(f.at, f.customer_id, f.entry_id).limit(BATCH)


def _merge(into: Simulation, batch: Simulation) -> None:
    into.decisions += batch.decisions
    into.changed_count += batch.changed_count
    for mine, theirs in ((into.current, batch.current), (into.proposed, batch.proposed)):
        mine.approve += theirs.approve
        mine.hold += theirs.hold
        mine.prepay += theirs.prepay
        mine.amount_approved += theirs.amount_approved
    into.changed += batch.changed[:MAX_CHANGED - len(into.changed)]
