"""A credit state from a row of the check's read (app/credit/sql.py SNAPSHOT)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.credit.plans import CreditState
from app.credit.policy import Exposure, GroupTerms, Overdue, PolicyParams, Security, default_policy
from app.customers.models import Account
from app.fx.convert import counted_in
from app.money import ZERO

POLICY_COLUMNS = tuple(PolicyParams.__dataclass_fields__)
GROUP_COLUMNS = ("group_id", "currency", "credit_limit", "blocked", "block_reason",
                 "open_receivables", "open_orders", "version")


def state_from_row(row: Any, today: dt.date) -> CreditState | None:
    """A credit state from a row of account, `p_`-prefixed policy, overdue, `g_`-prefixed
    group and `s_` securities columns; None when the row has no account."""
    if row is None or row["customer_id"] is None:
        return None
    account = Account.from_mapping(row)
    if row["p_prepay_required"] is None:
        policy = default_policy(account.risk_class)
    else:
        policy = PolicyParams(**{name: row[f"p_{name}"] for name in POLICY_COLUMNS})
    overdue = Overdue.from_oldest_due(row["oldest_due_on"], row["overdue_amount"] or ZERO, today)
    return CreditState(account, policy, overdue, row["p_version"] or 0, _group(row),
                       _securities(row, account.currency))


def _group(row: Any) -> GroupTerms | None:
    if row.get("g_group_id") is None:
        return None
    return GroupTerms(row["g_group_id"], row["g_currency"], row["g_credit_limit"],
                      row["g_blocked"], row["g_block_reason"],
                      Exposure(row["g_open_receivables"], row["g_open_orders"]),
                      row["g_version"])


def _securities(row: Any, currency: str) -> tuple[Security, ...]:
    """The securities valid on the read's day, at that day's rates. One in another currency
    with no rate yet (a PUT asks for one, so only a rate dated later could be missing) is
    left out rather than counted at a guess."""
    if not row.get("s_amounts"):
        return ()
    counted = []
    for amount, cur, rate, start, end in zip(row["s_amounts"], row["s_currencies"],
                                             row["s_rates"], row["s_from"], row["s_until"],
                                             strict=True):
        value = counted_in(amount, cur, currency, rate)
        if value is not None:
            counted.append(Security(value, start, end))
    return tuple(counted)
