"""Reading a customer's credit state (account, class policy, overdue facts) in one statement."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.plans import CreditState
from app.credit.policy import Overdue, PolicyParams, default_policy
from app.customers.models import Account
from app.customers.tables import accounts
from app.money import ZERO
from app.policies.tables import policies
from app.receivables.tables import open_items

POLICY_COLUMNS = tuple(PolicyParams.__dataclass_fields__)


def _overdue_columns(customer_id: ColumnElement[Any]) -> list[Any]:
    overdue = (open_items.c.customer_id == customer_id, open_items.c.open_amount > 0,
               open_items.c.due_on < bindparam("today"))
    oldest = select(func.min(open_items.c.due_on)).where(*overdue).scalar_subquery()
    amount = select(func.sum(open_items.c.open_amount)).where(*overdue).scalar_subquery()
    return [oldest.label("oldest_due_on"), amount.label("overdue_amount")]


_STATE = (
    select(*accounts.c, *(policies.c[name].label(f"p_{name}") for name in POLICY_COLUMNS),
           policies.c.version.label("p_version"), *_overdue_columns(accounts.c.customer_id))
    .select_from(accounts.outerjoin(policies, policies.c.risk_class == accounts.c.risk_class))
    .where(accounts.c.customer_id == bindparam("customer_id"))
)
# Locked in a statement of its own, then read afresh: a statement that waits for the row
# lock would see the row as it is but its subqueries (the overdue facts) as they were.
_LOCK = select(accounts.c.customer_id).where(
    accounts.c.customer_id == bindparam("customer_id")).with_for_update()


def state_from_row(row: Any, today: dt.date) -> CreditState | None:
    """A credit state from a row of account, `p_`-prefixed policy and overdue columns."""
    if row["customer_id"] is None:
        return None
    account = Account.from_mapping(row)
    if row["p_prepay_required"] is None:
        policy = default_policy(account.risk_class)
    else:
        policy = PolicyParams(**{name: row[f"p_{name}"] for name in POLICY_COLUMNS})
    overdue = Overdue.from_oldest_due(row["oldest_due_on"], row["overdue_amount"] or ZERO, today)
    return CreditState(account, policy, overdue, row["p_version"] or 0)


async def load_locked(conn: AsyncConnection, customer_id: str, today: dt.date
                      ) -> CreditState | None:
    """Lock the account row (FOR UPDATE) and read its credit state; None if unknown."""
    if (await conn.execute(_LOCK, {"customer_id": customer_id})).first() is None:
        return None
    return await load_state(conn, customer_id, today)


async def load_state(conn: AsyncConnection, customer_id: str, today: dt.date
                     ) -> CreditState | None:
    """The credit state without locking (for reads); None if the customer is unknown."""
    result = await conn.execute(_STATE, {"customer_id": customer_id, "today": today})
    row = result.mappings().first()
    return state_from_row(row, today) if row is not None else None
