"""A credit state as a JSON document, for the read cache (valid for one UTC day)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.credit.policy import Exposure, GroupTerms, Overdue, PolicyParams, Security
from app.customers.models import Account

if TYPE_CHECKING:
    from app.credit.plans import CreditState


def state_to_doc(state: CreditState) -> dict[str, Any]:
    """A JSON-safe form of a credit state (for the read cache; valid for one UTC day)."""
    return {"account": {k: _plain(v) for k, v in state.account.__dict__.items()},
            "policy": {k: _plain(v) for k, v in state.policy.__dict__.items()},
            "overdue": {"days": state.overdue.oldest_days, "amount": str(state.overdue.amount)},
            "policy_version": state.policy_version,
            "group": None if state.group is None else _group_doc(state.group),
            "securities": [[str(s.amount), s.valid_from.isoformat(), s.valid_until.isoformat()]
                           for s in state.securities]}


def _group_doc(group: GroupTerms) -> dict[str, Any]:
    doc = {k: _plain(v) for k, v in group.__dict__.items() if k != "exposure"}
    doc["open_receivables"] = str(group.exposure.open_receivables)
    doc["open_orders"] = str(group.exposure.open_orders)
    return doc


def state_from_doc(doc: dict[str, Any]) -> CreditState:
    from app.credit.plans import CreditState

    account = Account(**_revive(doc["account"], _ACCOUNT_TYPES))
    policy = PolicyParams(**_revive(doc["policy"], _POLICY_TYPES))
    overdue = Overdue(doc["overdue"]["days"], Decimal(doc["overdue"]["amount"]))
    group = doc.get("group")
    securities = tuple(Security(Decimal(amount), dt.date.fromisoformat(start),
                                dt.date.fromisoformat(end))
                       for amount, start, end in doc.get("securities", ()))
    return CreditState(account, policy, overdue, doc.get("policy_version", 0),
                       None if group is None else _group_from(group), securities)


def _group_from(doc: dict[str, Any]) -> GroupTerms:
    exposure = Exposure(Decimal(doc["open_receivables"]), Decimal(doc["open_orders"]))
    return GroupTerms(doc["group_id"], doc["currency"], Decimal(doc["credit_limit"]),
                      doc["blocked"], doc["block_reason"], exposure, doc["version"])


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value  # most fields: asked first, as every state is encoded on every check
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetimes too
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
