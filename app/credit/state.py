"""Loading everything a decision needs about one customer, in one statement."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.policy import (
    Decision,
    Exposure,
    Overdue,
    PolicyParams,
    default_policy,
    evaluate,
)
from app.credit.tables import policies
from app.customers.models import Account
from app.customers.tables import accounts
from app.db import Database
from app.money import ZERO
from app.receivables.tables import open_items


@dataclass(frozen=True)
class CreditState:
    """An account with its class policy and overdue facts, as of one read."""

    account: Account
    policy: PolicyParams
    overdue: Overdue
    policy_version: int = 0  # 0: no stored policy row, the shipped defaults apply

    def evaluate(self, amount: Decimal, today: dt.date, *, exposure: Exposure | None = None,
                 limit_rules: bool = True) -> Decision:
        """The policy decision for `amount` on top of the account's (or the given) exposure."""
        return evaluate(self.account.terms, self.policy, exposure or self.account.exposure,
                        self.overdue, amount, today, limit_rules=limit_rules)


@dataclass(frozen=True)
class ExistingOrder:
    """The fields of a stored order that decide whether a request is a replay."""

    customer_id: str
    requested_amount: Decimal
    currency: str
    channel: str | None
    entry_decision_id: str


_POLICY_COLUMNS = ("prepay_required", "hold_band", "max_days_past_due", "prepay_days_past_due",
                   "overdue_tolerance")


def _overdue_columns(customer_id: ColumnElement[Any]) -> list[Any]:
    overdue = (open_items.c.customer_id == customer_id, open_items.c.open_amount > 0,
               open_items.c.due_on < bindparam("today"))
    oldest = select(func.min(open_items.c.due_on)).where(*overdue).scalar_subquery()
    amount = select(func.sum(open_items.c.open_amount)).where(*overdue).scalar_subquery()
    return [oldest.label("oldest_due_on"), amount.label("overdue_amount")]


def _state_columns() -> list[Any]:
    return [*accounts.c, *(policies.c[name].label(f"p_{name}") for name in _POLICY_COLUMNS),
            policies.c.version.label("p_version"), *_overdue_columns(accounts.c.customer_id)]


_STATE = (
    select(*_state_columns())
    .select_from(accounts.outerjoin(policies, policies.c.risk_class == accounts.c.risk_class))
    .where(accounts.c.customer_id == bindparam("customer_id"))
)
_LOCKED = _STATE.with_for_update(of=accounts)

def state_from_row(row: Any, today: dt.date) -> CreditState | None:
    """A credit state from a row of account, `p_`-prefixed policy and overdue columns."""
    if row["customer_id"] is None:
        return None
    account = Account.from_mapping(row)
    if row["p_prepay_required"] is None:
        policy = default_policy(account.risk_class)
    else:
        policy = PolicyParams(**{name: row[f"p_{name}"] for name in _POLICY_COLUMNS})
    overdue = Overdue.from_oldest_due(row["oldest_due_on"], row["overdue_amount"] or ZERO, today)
    return CreditState(account, policy, overdue, row["p_version"] or 0)


async def load_locked(conn: AsyncConnection, customer_id: str, today: dt.date
                      ) -> CreditState | None:
    """Lock the account row (FOR UPDATE) and read its credit state; None if unknown."""
    result = await conn.execute(_LOCKED, {"customer_id": customer_id, "today": today})
    row = result.mappings().first()
    return state_from_row(row, today) if row is not None else None


async def load_state(conn: AsyncConnection, customer_id: str, today: dt.date
                     ) -> CreditState | None:
    """The credit state without locking (for reads); None if the customer is unknown."""
    result = await conn.execute(_STATE, {"customer_id": customer_id, "today": today})
    row = result.mappings().first()
    return state_from_row(row, today) if row is not None else None


async def read_state(db: Database, customer_id: str, today: dt.date) -> CreditState | None:
    """The credit state for reads and dry runs: from the cache when it has it, else the
    database (and then cached). Never used by a check that reserves."""
    cache = db.cache
    token = None
    if cache is not None:
        state, token = await cache.get_state(customer_id, today)
        if state is not None:
            return state
    async with db.autocommit() as conn:
        state = await load_state(conn, customer_id, today)
    if cache is not None and token is not None and state is not None:
        await cache.put_state(customer_id, token, today, state)
    return state


def state_to_doc(state: CreditState) -> dict[str, Any]:
    """A JSON-safe form of a credit state (for the read cache; valid for one UTC day)."""
    return {"account": {k: _plain(v) for k, v in state.account.__dict__.items()},
            "policy": {k: _plain(v) for k, v in state.policy.__dict__.items()},
            "overdue": {"days": state.overdue.oldest_days, "amount": str(state.overdue.amount)},
            "policy_version": state.policy_version}


def state_from_doc(doc: dict[str, Any]) -> CreditState:
    account = Account(**_revive(doc["account"], _ACCOUNT_TYPES))
    policy = PolicyParams(**_revive(doc["policy"], _POLICY_TYPES))
    overdue = Overdue(doc["overdue"]["days"], Decimal(doc["overdue"]["amount"]))
    return CreditState(account, policy, overdue, doc.get("policy_version", 0))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _reviver(annotation: str) -> Any:
    # Field annotations are strings here (postponed evaluation); they name the type plainly.
    if "Decimal" in annotation:
        return Decimal
    if "datetime" in annotation:
        return dt.datetime.fromisoformat
    if "date" in annotation:
        return dt.date.fromisoformat
    return None


def _types(cls: Any) -> dict[str, Any]:
    return {name: _reviver(str(f.type)) for name, f in cls.__dataclass_fields__.items()}


_ACCOUNT_TYPES = _types(Account)
_POLICY_TYPES = _types(PolicyParams)


def _revive(values: dict[str, Any], types: dict[str, Any]) -> dict[str, Any]:
    return {k: v if v is None or types[k] is None else types[k](v) for k, v in values.items()}
